"The two levers for boxes (14_model): the words of each image token's place added to it, and ordinal targets for a box's digits."
import pytest, torch
import torch.nn.functional as F
from vitron_nb.core import VitronConfig, VitronError, set_seed
from vitron_nb.tokenizer import load_tokenizer
from vitron_nb.model import box_digit_loss, BOX_SIGMAS

ANSWER = " green triangle: (0.12, 0.34, 0.45, 0.67)"
SHARP = (1e-3, 1e-3)

def _labels(tok):
    prompt, answer = tok("Where is it?", add_special_tokens=False)["input_ids"], tok(ANSWER, add_special_tokens=False)["input_ids"]
    return torch.tensor([[-100] * len(prompt) + answer])

def test_box_digit_loss_is_the_plain_loss_as_the_spread_vanishes():
    tok = load_tokenizer(); labels = _labels(tok)
    torch.manual_seed(0); logits = torch.randn(1, labels.shape[1], len(tok))
    plain = F.cross_entropy(logits[0, :-1], labels[0, 1:], ignore_index=-100)
    assert torch.allclose(box_digit_loss(logits, labels, tok, SHARP), plain, atol=1e-5)
    assert box_digit_loss(logits, labels, tok) > plain + 0.05            # the spread targets carry entropy of their own
    with pytest.raises(VitronError, match="sigmas must be two positive"): box_digit_loss(logits, labels, tok, (0.0, 1.0))

def test_a_first_decimal_one_off_costs_less_than_one_far_off():
    tok = load_tokenizer(); labels = _labels(tok); ids = labels[0].tolist()
    digits, dot = [tok.convert_tokens_to_ids(str(k)) for k in range(10)], tok.convert_tokens_to_ids(".")
    firsts = [j for j in range(1, len(ids)) if ids[j] in digits and ids[j - 1] == dot]
    assert len(firsts) == 4                                              # x1, y1, x2, y2
    def loss(shift, sigmas=BOX_SIGMAS):
        "Every first decimal predicted as the true one moved by `shift` (the true digit's logit stays 0)."
        logits = torch.zeros(1, len(ids), len(tok))
        for j in firsts: logits[0, j - 1, digits[(digits.index(ids[j]) + shift) % 10]] = 5.0
        return box_digit_loss(logits, labels, tok, sigmas).item()
    assert loss(0) < loss(1) < loss(5)                                   # here 1, 2, 3, 4 and 6: five off means far
    assert loss(1, SHARP) == pytest.approx(loss(5, SHARP))               # the plain loss cannot tell near from far

def test_config_fields_are_checked_and_default_off():
    with pytest.raises(VitronError, match="box_loss must be"): VitronConfig(box_loss="l1")
    old = {k: v for k, v in VitronConfig().to_dict().items() if k not in ("position_words", "box_loss")}
    config = VitronConfig.from_dict(old)                                 # a config saved before the fields existed
    assert config.position_words is False and config.box_loss == "tokens"

def test_place_words_spell_each_tokens_place():
    from vitron_nb.llm import load_llm
    from vitron_nb.model import place_words
    config, tok = VitronConfig(position_words=True), load_tokenizer()
    llm = load_llm(config=config); side = config.image_size // config.patch_size
    words = place_words(llm, tok, config)
    assert words.shape == (side * side, config.d_llm)
    table = llm.get_input_embeddings().weight.detach()
    step = table[tok.convert_tokens_to_ids("9")] - table[tok.convert_tokens_to_ids("0")]
    # along a row only x changes: the first and last columns (x = 0.06 and 0.94) differ by the words "9" and "0"
    assert torch.allclose(words[3 * side + side - 1] - words[3 * side], step, atol=1e-5)
    # along a column only y changes, turned: as long a difference, in another direction
    dy = words[(side - 1) * side + 2] - words[2]
    assert torch.allclose(dy.norm(), step.norm(), atol=1e-4) and F.cosine_similarity(dy, step, dim=0) < 0.5
    assert torch.equal(place_words(llm, tok, config), words)
    assert place_words(llm, tok, VitronConfig(position_words=True, image_merge=2)).shape[0] == (side // 2) ** 2
    assert torch.equal(place_words(llm, tok, config, merge=2)[1 * side // 2 + 1], words[2 * side + 2])   # both write 0.3 first

def test_a_model_with_both_levers_adds_the_words_trains_and_keeps_them(tmp_path):
    from vitron_nb.model import build_model, media_embeddings, _StageLoss, train_stage, trained_state, save_trained, load_trained
    from vitron_nb.tasks import make_examples
    examples = make_examples(["rec"], 4, "train")
    set_seed(0); plain = build_model()
    set_seed(0); levers = build_model(VitronConfig(position_words=True, box_loss="ordinal"))
    for a, b in zip(media_embeddings(plain, examples)["image"], media_embeddings(levers, examples)["image"]):
        assert torch.allclose(b - a, levers.place_words, atol=1e-5)
    assert "place_words" in trained_state(levers) and not hasattr(plain, "place_words")
    assert _StageLoss(levers)(examples)[0] > _StageLoss(plain)(examples)[0]     # the ordinal targets' own entropy
    train_stage(levers, "2", steps=1, batch_size=2, out_dir=tmp_path, tasks={"rec": 1}, progress=False)
    save_trained(levers, tmp_path / "m")
    again = load_trained(tmp_path / "m")
    assert again.config.box_loss == "ordinal" and torch.equal(again.place_words, levers.place_words)
    # a run folder trained without the levers refuses to resume with them
    with pytest.raises(VitronError, match="another config"): train_stage(plain, "2", steps=2, batch_size=2, out_dir=tmp_path, tasks={"rec": 1}, progress=False)

def test_video_tokens_get_the_words_of_their_place_in_every_frame():
    from vitron_nb.model import build_model, media_embeddings, FRAME_MERGE
    from vitron_nb.tasks import make_examples
    examples = make_examples(["video_grounding"], 2, "train")
    set_seed(0); plain = build_model()
    set_seed(0); placed = build_model(VitronConfig(video_position_words=True))
    grid = (placed.config.image_size // placed.config.patch_size // FRAME_MERGE) ** 2
    assert placed.video_place_words.shape == (grid, placed.config.d_llm) and not hasattr(placed, "place_words")
    for a, b in zip(media_embeddings(plain, examples)["video"], media_embeddings(placed, examples)["video"]):
        assert a.shape[0] == placed.config.n_frames * grid
        assert torch.allclose(b - a, placed.video_place_words.repeat(placed.config.n_frames, 1), atol=1e-5)

def test_the_levers_belong_to_the_alignment_stages_alone():
    from tests.test_cli import run
    for flags in (["--position-words"], ["--video-position-words"], ["--box-loss", "ordinal"]):
        code, _, err = run("train", "--only", "llm", *flags)
        assert code == 2 and "belong to --only vitron" in err


def test_position_scale_scales_the_place_words_and_is_refused_below_zero():
    from vitron_nb.llm import load_llm
    from vitron_nb.model import place_words
    tok, config = load_tokenizer(), VitronConfig(position_words=True)
    llm = load_llm(config=config)
    assert torch.allclose(place_words(llm, tok, VitronConfig(position_words=True, position_scale=0.25)), 0.25 * place_words(llm, tok, config))
    with pytest.raises(VitronError, match="position_scale must be > 0"): VitronConfig(position_scale=0.0)
    from tests.test_cli import run
    code, _, err = run("train", "--only", "llm", "--position-scale", "0.5")
    assert code == 2 and "belong to --only vitron" in err
    code, _, err = run("train", "--only", "vitron", "--position-scale", "0")       # not dropped as falsy: refused by name
    assert code == 2 and "position_scale must be > 0, got 0.0" in err and "Traceback" not in err
