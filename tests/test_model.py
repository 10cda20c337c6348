"The assembled model: placeholders expand, stages train what they should and resume, answers parse into calls."
import pytest, torch
from vitron_nb.core import VitronError, CheckpointError
from vitron_nb.tasks import make_example, ModuleCall
from vitron_nb.model import (build_model, encode_batch, train_stage, split_answer, save_trained, load_trained, model_predict,
                             video_tokens, FRAME_MERGE, trained_state, media_embeddings, picture_reliance, STAGES)

@pytest.fixture(scope="module")
def model(): return build_model()

def test_placeholders_become_their_embeddings(model):
    ex = make_example("region_caption", 3, "test")
    batch = encode_batch(model, [ex])
    n_patches = (model.config.image_size // model.config.patch_size) ** 2
    labels = batch["labels"][0]
    first_label = int((labels != -100).nonzero()[0])
    # everything before the answer is prompt (-100), and the prompt holds the image's patches and the region token
    assert first_label > n_patches + model.region_encoder.n_region_tokens
    video = make_example("video_qa", 0, "test").video[None]
    expected = n_patches if model.config.video_pooling == "mean" else model.config.n_frames * n_patches // FRAME_MERGE ** 2
    assert video_tokens(model, video).shape[1] == expected

def test_media_tokens_sit_at_the_word_scale(model):
    tokens = media_embeddings(model, [make_example("region_caption", 1, "test")])
    word = model.llm.get_input_embeddings().weight.norm(dim=-1).mean().item()
    for kind in ("image", "region"):
        norm = tokens[kind][0].norm(dim=-1).mean().item()
        assert 0.5 * word < norm < 2 * word, (kind, norm, word)
    # standardisation statistics come from the frozen encoder on train scenes: per-channel mean ~0, std ~1 afterwards
    from vitron_nb.model import _patches
    from vitron_nb.tasks import make_examples
    feats = model.media_norm.standardise(_patches(model, make_examples(["rec"], 16, "train")[0].image[None]).flatten(0, 1))
    assert feats.mean().abs() < 0.5 and 0.3 < feats.std() < 3

def test_stages_train_what_they_should_and_resume(model, tmp_path):
    assert STAGES["1.1"]["llm"] == "full" and STAGES["2"]["llm"] == "full"
    base = {k: v.clone() for k, v in model.llm.state_dict().items()}
    train_stage(model, "1.1", steps=1, batch_size=2, out_dir=tmp_path, progress=False)
    assert not all(torch.equal(base[k], v) for k, v in model.llm.state_dict().items())      # stage 1.1 trains the whole LLM
    first = train_stage(model, "2", steps=1, batch_size=2, out_dir=tmp_path, progress=False)
    resumed = train_stage(model, "2", steps=2, batch_size=2, out_dir=tmp_path, progress=False)
    assert resumed["resumed_from"] == 1 and resumed["seconds"] >= first["seconds"] > 0     # the first call's time is kept, not lost
    assert any(k.startswith("llm.") for k in trained_state(model)) and not any(k.startswith("clip.") for k in trained_state(model))
    assert not any(k.startswith("llm.") and "lora_" not in k for k in trained_state(model, base_llm=False))
    save_trained(model, tmp_path / "m")
    again = load_trained(tmp_path / "m")
    assert all(torch.equal(again.state_dict()[k], v) for k, v in trained_state(model).items())
    with pytest.raises(VitronError, match="unknown stage"): train_stage(model, "9", steps=1, out_dir=tmp_path)
    with pytest.raises(CheckpointError, match="no trained VITRON model"): load_trained(tmp_path / "empty")
    # a truncated file, and one saved at another preset, are refused by name before anything big is built
    data = (tmp_path / "m" / "vitron.safetensors").read_bytes()
    (tmp_path / "cut").mkdir(); (tmp_path / "cut" / "vitron.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="vitron.safetensors"): load_trained(tmp_path / "cut")
    from vitron_nb.core import VitronConfig, save_tensors
    save_tensors({"x": torch.zeros(1)}, tmp_path / "paper" / "vitron.safetensors",
                 {"kind": "vitron", "config": VitronConfig.from_preset("paper").to_dict(), "lora": True})
    with pytest.raises(CheckpointError, match="trained at preset 'paper'"): load_trained(tmp_path / "paper")

def test_the_lora_switch_trains_only_the_adapter(tmp_path):
    from vitron_nb.model import prepare_stage
    fresh = build_model()
    STAGES["lora-test"] = {**STAGES["2"], "llm": "lora"}
    try:
        prepare_stage(fresh, "lora-test")
        trainable = [n for n, p in fresh.llm.named_parameters() if p.requires_grad]
        assert trainable and all("lora_" in n for n in trainable)
        assert any("lora_" in k for k in trained_state(fresh))
        save_trained(fresh, tmp_path / "lora")
        again = load_trained(tmp_path / "lora")
        assert hasattr(again.llm, "peft_config")
        assert all(torch.equal(again.state_dict()[k], v) for k, v in trained_state(fresh).items())
    finally: del STAGES["lora-test"]

def test_picture_reliance_reports_real_and_swapped_losses(model):
    out = picture_reliance(model, tasks=("rec",), n=4)
    assert set(out) == {"rec"} and out["rec"]["real"] > 0 and out["rec"]["swapped"] > 0

@pytest.mark.parametrize("text,call,error", [
    ("Sure. <Module> image_editing </Module> <Instruction> editing: make it red </Instruction> <Region> (0.10, 0.20, 0.30, 0.40) </Region>",
     ModuleCall("image_editing", "editing: make it red", (0.1, 0.2, 0.3, 0.4)), None),
    ("red circle: (0.1, 0.2, 0.3, 0.4)", None, None),
    ("<Module> B </Module> <Instruction> x </Instruction>", None, "unknown module"),
    ("Sure <Module> image_edit", None, "truncated"),
    ("<Module> image_editing </Module> <Instruction> e </Instruction> <Region> (0.5, 0.2) </Region>", None, "malformed region"),
])
def test_split_answer(text, call, error):
    _, got_call, got_error = split_answer(text)
    assert got_call == call and ((error is None and got_error is None) or error in got_error)

def test_predictions_have_calls_or_errors(model):
    ex = [make_example("t2i", 1, "test"), make_example("rec", 1, "test")]
    preds = model_predict(model, ex)
    assert set(preds) == {e.id for e in ex}
    for p in preds.values(): assert p.call is None or p.call.module in ("image_generation", "image_segmentation", "image_editing",
                                                                        "video_generation", "video_segmentation", "video_editing", "image_to_video")

def test_box_axes_reads_each_axis_of_the_committed_model():
    import json
    from vitron_nb.model import box_axes, BOX_AXES_PATH, committed_llm, VITRON_TINY
    record = json.loads(BOX_AXES_PATH.read_text())
    assert record["llm"] == committed_llm(), "the committed model changed: re-measure box_axes and update 14_model's prose"
    assert min(record["grounded_caption"]["corr_x"], record["grounded_caption"]["corr_y"]) > 0.7 > max(record["rec"]["corr_x"], record["rec"]["corr_y"])
    small = box_axes(load_trained(VITRON_TINY), n=8)          # two readable boxes per task at least: the committed model misses one caption of four
    assert small["rec"]["n"] == 8 and small["grounded_caption"]["n"] == 4
    assert all(len(p) == 4 for r in small.values() for p in r["points"])

def test_rec_readouts_record_and_a_small_run():
    import json
    from vitron_nb.model import rec_readouts, REC_READOUTS_PATH, committed_llm, VITRON_TINY, BoxProbe
    record = json.loads(REC_READOUTS_PATH.read_text())
    assert record["llm"] == committed_llm(), "the committed model changed: re-measure rec_readouts and update 14_model's prose"
    # 14_model's text: the LLM reads below a probe of its own image tokens, and even CLIP's head is short of the floor
    assert max(record[k]["all"] for k in ("written", "probe", "probe_position")) < 0.3 < 0.6 < record["clip_head"]["all"] < 0.90
    small = rec_readouts(load_trained(VITRON_TINY), n_train=16, n_test=4, steps=2, batch_size=4)
    assert set(small) >= {"written", "written_name", "clip_head", "probe", "probe_position"}
    assert all(0 <= small[k]["all"] <= 1 for k in ("written", "clip_head", "probe", "probe_position"))
    with pytest.raises(VitronError, match="must be >= 1"): rec_readouts(load_trained(VITRON_TINY), n_test=0)
    # the probe's position table is what it adds to the tokens: zero at the start, so both probes start alike
    torch.manual_seed(0); plain = BoxProbe(8, 4)
    torch.manual_seed(0); placed = BoxProbe(8, 4, position=True)
    tokens, names = torch.randn(2, 4, 8), torch.randn(2, 8)
    assert torch.allclose(plain(tokens, names), placed(tokens, names))

def test_rec_reads_record_and_refusals():
    "The REC-from-REC-alone record: marks in order, questions = steps x batch, REC rising with reads and far short of the floor (14_model's text)."
    import json
    from vitron_nb.model import rec_reads, REC_READS_PATH, UNDERSTANDING
    record = json.loads(REC_READS_PATH.read_text())
    marks = record["curve"]
    assert [m["step"] for m in marks] == sorted(m["step"] for m in marks) and marks[-1]["step"] == record["steps"]
    assert all(m["questions"] == m["step"] * record["batch_size"] for m in marks) and record["n_test"] == 200
    accuracy = [m["rec"]["all"] for m in marks]
    assert accuracy == sorted(accuracy) and 0.3 < accuracy[-1] < UNDERSTANDING["rec"][1] / 2
    assert all(m["name_right"] > 0.8 for m in marks)          # the name is written right: the box is what is missing
    with pytest.raises(VitronError, match="every mark in 1..steps"): rec_reads(steps=4, marks=(0,))
    with pytest.raises(VitronError, match="must be >= 1"): rec_reads(steps=4, n_test=0)

def test_region_readouts_record_and_a_small_run():
    import json
    from vitron_nb.model import region_readouts, size_readings, region_head_reading, REGION_READOUTS_PATH, committed_llm, VITRON_TINY
    record = json.loads(REGION_READOUTS_PATH.read_text())
    assert record["llm"] == committed_llm(), "the committed model changed: re-measure region_readouts and update 14_model's prose"
    assert 0 < record["written_unseen_pairs"] < 0.2 and record["written"]["shape"]["unseen"] < 0.3 < 0.7 < record["clip_head"]["shape"]["unseen"]
    committed = load_trained(VITRON_TINY)
    small = region_readouts(committed, n_train=8, n_test=3, keep_answers=True)
    assert size_readings(committed, n_test=3, answers=small["answers"]) == size_readings(committed, n_test=3)   # its answers, or asked again
    with pytest.raises(VitronError, match="3 answers each"): size_readings(committed, n_test=3, answers={"written": ["a"], "alone": ["a"]})
    assert set(small["clip_head"]) == set(small["written_alone"]) == {"size", "colour", "shape"} and 0 <= small["written_unseen_pairs"] <= 1
    assert record["written_alone"]["colour"]["all"] < 0.25 < 0.9 < record["probe"]["colour"]["all"]   # the committed LLM does not read the token's colour
    read = region_head_reading(committed, [make_example("region_caption", i, "test") for i in range(2)])
    assert len(read) == 2 and all(set(r) == {"colour", "shape", "size"} for r in read)

def test_stage_texts_name_held_out_pairs_from_their_own_seed():
    from vitron_nb.model import stage_texts
    from vitron_nb.world import HELD_OUT
    texts = [t for step in range(10) for t in stage_texts("2", step, n=4)]
    assert len(texts) == 40 and len(set(texts)) > 30
    assert texts[:4] == stage_texts("2", 0, n=4) and stage_texts("2", 0, n=4) != stage_texts("2", 0, seed=1, n=4)
    assert any(f"{c} {s}" in t for t in texts for c, s in HELD_OUT)          # held-out pairs are named...
    assert stage_texts("1.1", 0) == [] and len(stage_texts("2", 3)) == STAGES["2"]["texts"] == 4   # ...only where asked: four per stage-2 step
    with pytest.raises(VitronError, match="n must be >= 0"): stage_texts("2", 0, n=-1)

def test_packed_training_loss_and_gradients_equal_the_padded_ones(model):
    "A stage-2 batch (pictures, videos and text dialogues of different lengths) gives the same loss and gradients packed as padded."
    from vitron_nb.model import _StageLoss, stage_examples, stage_texts, prepare_stage
    params = prepare_stage(model, "2")
    examples, texts = stage_examples("2", 7, 6, model.config), stage_texts("2", 7)
    assert len({len(encode_batch(model, [ex])["labels"][0]) for ex in examples}) > 1          # lengths differ: there is padding
    results = []
    for packed in (False, True):
        model.zero_grad()
        loss, tokens = _StageLoss(model, packed=packed)(examples, texts)
        loss.backward()
        results.append((loss.item(), int(tokens), [p.grad.clone() for p in params if p.grad is not None]))
    (padded, n_padded, grads_padded), (packed, n_packed, grads_packed) = results
    assert n_padded == n_packed and padded == pytest.approx(packed, rel=1e-5)
    assert len(grads_padded) == len(grads_packed)
    for a, b in zip(grads_padded, grads_packed): assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)
    model.zero_grad()

def test_unpack_rows_puts_each_packed_sequence_back_in_its_row(model):
    "The hidden states of a packed stage-2 batch, unpacked, are the padded batch's at every real position, and zero at the padding."
    from vitron_nb.llm import pack_rows, unpack_rows
    from vitron_nb.model import stage_examples
    batch = encode_batch(model, stage_examples("2", 3, 6, model.config))
    mask = batch["attention_mask"]
    with torch.no_grad():
        padded = model.llm(**batch, output_hidden_states=True).hidden_states[-1]
        width = 2 * mask.shape[1]                                                 # rows twice as long: something must share one
        packed = model.llm(**pack_rows(batch, width), output_hidden_states=True).hidden_states[-1]
    assert packed.shape[0] < padded.shape[0]
    back = unpack_rows(packed, mask, width)
    assert back.shape == padded.shape and torch.allclose(back[mask.bool()], padded[mask.bool()], atol=1e-4)
    assert back[~mask.bool()].abs().sum() == 0
