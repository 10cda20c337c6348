"""The language model: the KV cache changes no token, placeholders expand where they should (and mismatches are
refused), LoRA trains a small share with the base frozen, the committed stage-0 weights beat a random model on
held-out dialogues, and training resumes exactly."""
import json

import pytest
import torch

from vitron_nb.core import CheckpointError, VitronConfig, VitronError
from vitron_nb.llm import (LLM_PATH, VICUNA_7B_PARAMETERS, add_lora, build_llm, call_accuracy, count_parameters, dialogue_loss,
                           embed_with_media, generate_ids, load_llm_checkpoint, load_llm, parse_call, pretrain_llm,
                           text_corpus, trainable_share, unigram_baseline, user_turn, default_tokenizer)
from vitron_nb.tasks import ModuleCall, make_example

TINY = dict(d_llm=64, llm_layers=2, llm_heads=2, d_llm_ffn=128)   # smaller than the tiny preset, for speed



@pytest.fixture(scope="module")
def tokenizer(): return default_tokenizer()


@pytest.fixture(scope="module")
def trained(): return load_llm(device="cpu")


@pytest.fixture(scope="module")
def random_llm():
    torch.manual_seed(0)
    return build_llm(VitronConfig()).eval()


@pytest.fixture(scope="module")
def heldout(): return text_corpus(28, "test", seed=3)


PROMPTS = ["Draw a large green square in the top left.", "Make a video of a small red cross moving up slowly.",
           "<image> Segment the blue circle.", "<video> What moves left?"]


@pytest.mark.parametrize("which", ["random_llm", "trained"])
def test_kv_cache_gives_identical_tokens(which, request):
    llm = request.getfixturevalue(which)
    with_cache = generate_ids(llm, PROMPTS, max_new_tokens=24, use_cache=True)
    assert with_cache == generate_ids(llm, PROMPTS, max_new_tokens=24, use_cache=False)
    assert with_cache[3] == generate_ids(llm, PROMPTS[3:], max_new_tokens=24)[0]      # left padding changes nothing
    assert all(len(ids) > 0 for ids in with_cache)


def test_embed_with_media_positions_by_hand(random_llm, tokenizer):
    image, region = tokenizer.convert_tokens_to_ids("<image>"), tokenizer.convert_tokens_to_ids("<region>")
    bos, pad, d = tokenizer.bos_token_id, tokenizer.pad_token_id, random_llm.config.hidden_size
    ids = torch.tensor([[bos, 300, image, 301, region, 302], [bos, image, 303, pad, pad, pad]])
    mask = torch.tensor([[1] * 6, [1, 1, 1, 0, 0, 0]])
    a, b, r = torch.randn(3, d), torch.randn(2, d), torch.randn(1, d)
    out = embed_with_media(random_llm, ids, {"image": [a, b], "<region>": [r]}, attention_mask=mask)
    embeds, table = out["inputs_embeds"].detach(), random_llm.get_input_embeddings().weight.detach()
    assert embeds.shape == (2, 8, d)
    assert out["media_spans"] == [[("<image>", 2, 5), ("<region>", 6, 7)], [("<image>", 1, 3)]]
    assert out["attention_mask"].tolist() == [[1] * 8, [1, 1, 1, 1, 0, 0, 0, 0]]
    assert out["labels"].tolist() == [[bos, 300, -100, -100, -100, 301, -100, 302], [bos, -100, -100, 303] + [-100] * 4]
    assert torch.equal(embeds[0, 2:5], a) and torch.equal(embeds[0, 6], r[0]) and torch.equal(embeds[1, 1:3], b)
    assert torch.equal(embeds[0, [0, 1, 5, 7]], table[[bos, 300, 301, 302]]) and torch.equal(embeds[1, 3], table[303])
    assert torch.equal(embeds[1, 4:], torch.zeros(4, d))
    with torch.no_grad():   # a padded row gives the logits it gives alone
        batched = random_llm(inputs_embeds=out["inputs_embeds"], attention_mask=out["attention_mask"]).logits[1, :4]
        alone = random_llm(inputs_embeds=embed_with_media(random_llm, ids[1:, :3], {"image": [b]})["inputs_embeds"]).logits[0]
    assert torch.allclose(batched, alone, atol=1e-4)
    labels = torch.tensor([[-100, -100, -100, 301, -100, 302], [-100, -100, 303, -100, -100, -100]])   # caller's labels kept
    kept = embed_with_media(random_llm, ids, {"image": [a, b], "region": [r]}, attention_mask=mask, labels=labels)["labels"]
    assert kept.tolist() == [[-100] * 5 + [301, -100, 302], [-100, -100, -100, 303] + [-100] * 4]


def test_media_gradients_flow(random_llm, tokenizer):
    image = tokenizer.convert_tokens_to_ids("<image>")
    vectors = torch.randn(4, random_llm.config.hidden_size, requires_grad=True)
    out = embed_with_media(random_llm, torch.tensor([1, image, 20, 21]), {"image": [vectors]})
    assert out["inputs_embeds"].shape[1] == 7
    random_llm(inputs_embeds=out["inputs_embeds"], labels=out["labels"]).loss.backward()
    assert vectors.grad is not None and vectors.grad.abs().sum() > 0
    random_llm.zero_grad(set_to_none=True)


def test_embed_with_media_errors(random_llm, tokenizer):
    image = tokenizer.convert_tokens_to_ids("<image>")
    d = random_llm.config.hidden_size
    ids = torch.tensor([[1, image, 500, image]])
    with pytest.raises(VitronError, match="2 <image> placeholder\\(s\\) but 1"):
        embed_with_media(random_llm, ids, {"image": [torch.zeros(3, d)]})
    with pytest.raises(VitronError, match="1 <image> placeholder\\(s\\) but 0"):
        embed_with_media(random_llm, ids[:, :3])
    with pytest.raises(VitronError, match="0 <video> placeholder\\(s\\) but 1"):
        embed_with_media(random_llm, ids[:, :3], {"image": [torch.zeros(1, d)], "video": [torch.zeros(1, d)]})
    with pytest.raises(VitronError, match="is 17 wide"):
        embed_with_media(random_llm, ids, {"image": [torch.zeros(3, d), torch.zeros(3, 17)]})
    with pytest.raises(VitronError, match="2-D"):
        embed_with_media(random_llm, ids[:, :3], {"image": [torch.zeros(1, 3, d)]})
    with pytest.raises(VitronError, match="unknown media kind"):
        embed_with_media(random_llm, ids[:, :3], {"audio": [torch.zeros(1, d)]})
    with pytest.raises(VitronError, match="right padding"):
        embed_with_media(random_llm, ids[:, :3], {"image": [torch.zeros(1, d)]}, attention_mask=[[0, 1, 1]])
    with pytest.raises(VitronError, match="longer than max_seq_len = 512"):
        embed_with_media(random_llm, ids[:, :3], {"image": [torch.zeros(511, d)]})


def test_lora_share_and_frozen_base():
    config = VitronConfig()
    torch.manual_seed(0)
    model = add_lora(build_llm(config), config)
    share = trainable_share(model)
    per_block = config.lora_r * (4 * 2 * config.d_llm + 3 * (config.d_llm + config.d_llm_ffn))
    assert share["trainable"] == config.llm_layers * per_block == 312_320
    assert share["share"] < 0.10 and share["total"] == 3_688_704 + 312_320
    base_before = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" not in n}
    lora_before = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}
    assert all(not model.get_parameter(n).requires_grad for n in base_before)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    ids = torch.randint(0, 900, (2, 16))
    model(input_ids=ids, labels=ids).loss.backward(); optimizer.step()
    assert all(torch.equal(model.get_parameter(n), v) for n, v in base_before.items())
    assert any(not torch.equal(model.get_parameter(n), v) for n, v in lora_before.items())


def test_paper_preset_is_vicuna_7b_on_meta():
    with torch.device("meta"): llm = build_llm(VitronConfig.from_preset("paper"))
    assert count_parameters(llm) == VICUNA_7B_PARAMETERS


def test_committed_weights_beat_random_and_unigram(trained, random_llm, heldout):
    assert LLM_PATH.is_file() and LLM_PATH.stat().st_size < 10_000_000
    record = json.loads(LLM_PATH.with_suffix(".json").read_text())
    assert record["dtype"] == "float16" and record["metrics"]["heldout_perplexity"] < record["metrics"]["unigram_perplexity"]
    assert next(trained.parameters()).dtype == torch.float32
    trained_loss, random_loss = dialogue_loss(trained, heldout)["loss"], dialogue_loss(random_llm, heldout)["loss"]
    unigram = unigram_baseline(text_corpus(140, "train", seed=3), heldout)["loss"]
    assert trained_loss < unigram < random_loss, (trained_loss, unigram, random_loss)


def test_trained_model_routes_held_out_text_requests(trained):
    calls = call_accuracy(trained, n=16, seed=11)           # measured: 1.00 on 200 held-out requests
    assert calls["module_and_parses"] >= 0.9, calls["samples"]
    assert calls["attribute_shape"] >= 0.75                  # measured: 0.97 (colour, size, position: about chance)


def test_train_and_resume_exactly(tmp_path):
    config = VitronConfig(**TINY)
    settings = dict(batch_size=2, seq_len=24, n_dialogues=28, checkpoint_every=1, progress=False)
    _, first = pretrain_llm(config, tmp_path / "a", steps=2, **settings)
    resumed, second = pretrain_llm(config, tmp_path / "a", steps=3, **settings)
    straight, _ = pretrain_llm(config, tmp_path / "b", steps=3, **settings)
    assert (first["resumed_from"], second["resumed_from"], second["steps"]) == (0, 2, 3)
    for (name, p), q in zip(resumed.named_parameters(), straight.parameters()):
        assert torch.allclose(p, q, atol=1e-6), name
    assert load_llm_checkpoint(tmp_path / "a" / "checkpoint.safetensors", build_llm(config))["step"] == 3
    with pytest.raises(CheckpointError, match="another config"):
        pretrain_llm(VitronConfig(**{**TINY, "d_llm_ffn": 96}), tmp_path / "a", steps=4, **settings)
    with pytest.raises(VitronError, match="seq_len"):
        pretrain_llm(config, tmp_path / "c", steps=1, seq_len=1000)


def test_load_llm_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no LLM weights"): load_llm(tmp_path / "none.safetensors")
    with pytest.raises(CheckpointError, match="differs in \\['d_llm'\\]"): load_llm(config=VitronConfig(d_llm=128))
    with pytest.raises(VitronError, match="raise vocab_size"): build_llm(VitronConfig(vocab_size=512))


def test_parse_call():
    text = ("Sure. <Module> image_editing </Module> <Instruction> editing: make the red circle blue </Instruction> "
            "<Region> (0.10, 0.20, 0.30, 0.40) </Region>")
    assert parse_call(text) == ModuleCall("image_editing", "editing: make the red circle blue", (0.1, 0.2, 0.3, 0.4))
    assert parse_call("<Module> B </Module> <Instruction> x </Instruction>") is None
    assert parse_call("<Module> image_editing </Module> <Instruction> x </Instruction> <Region> (1.5, 0, 2, 1) </Region>") is None
    assert parse_call("just words") is None
    with pytest.raises(VitronError): parse_call(None)
