"""The signal side of hybrid message passing (26_signals): pieces, file round trip and refusals, the committed record."""
import json
import pytest
import torch
from vitron_nb.core import VitronConfig, VitronError, CheckpointError, save_tensors
from vitron_nb.signals import (Signals, Discriminator, reverse_gradient, relative_l2, generation_request, signal_answer, save_signals,
                               load_signals, SIGNALS_PATH, ABLATION_PATH, ARMS, SIGNAL_TASKS, specialist_widths, signal_rows)
from vitron_nb.calls import MESSAGE_MODES


def test_gradient_reversal_flips_and_scales():
    x = torch.randn(4, 3, requires_grad=True)
    (reverse_gradient(x, 2.0) * torch.arange(3.0)).sum().backward()
    assert torch.equal(x.grad, -2.0 * torch.arange(3.0).expand(4, 3))


def test_signals_shapes_and_errors():
    config = VitronConfig()
    signals = Signals(config)
    v = signals.features(torch.randn(3, signal_rows(config), config.d_llm))
    v_p, v_s = signals.split(v)
    assert v_p.shape == v_s.shape == (3, signal_rows(config), config.d_llm // 2)
    for name, width in specialist_widths(config).items():
        assert signals.project(v, name).shape == (3, width)
    assert torch.allclose(signals.project(v, "segmentation").norm(dim=-1), torch.ones(3), atol=1e-5)
    assert signals.discriminator(v_s).shape == (3, len(SIGNAL_TASKS))
    with pytest.raises(VitronError, match="signal hidden states must be"): signals.features(torch.randn(3, config.d_llm))
    with pytest.raises(VitronError, match="no signal projector"): signals.project(v, "image_editing")


def test_relative_l2_scale_free():
    target = torch.randn(5, 7)
    assert float(relative_l2(target, target)) == 0.0
    assert abs(float(relative_l2(torch.zeros(5, 7), target)) - 1.0) < 1e-6
    assert abs(float(relative_l2(100 * target * 0, 100 * target)) - 1.0) < 1e-6


def test_generation_request_reads_words():
    assert generation_request("generation: a small blue cross at the bottom right") == dict(colour="blue", shape="cross", size="small",
                                                                                           position="bottom right")
    assert generation_request("generation: a red circle") == dict(colour="red", shape="circle", size="medium", position="centre")
    assert generation_request("generation: a lovely thing") is None


def test_signal_answer_parses_and_sits_after_the_call():
    from vitron_nb.tasks import make_examples
    from vitron_nb.calls import parse_answer
    from vitron_nb.tokenizer import load_tokenizer
    config, tokenizer = VitronConfig(), load_tokenizer()
    for ex in make_examples(list(SIGNAL_TASKS) + ["image_qa"], 2, "test", config):
        text = signal_answer(ex)
        if ex.call is None:
            assert "<signal_" not in text
            continue
        assert parse_answer(text, n_signal=config.n_signal).modes == MESSAGE_MODES
        tokens = tokenizer.convert_ids_to_tokens(tokenizer(text)["input_ids"])
        assert tokens[-config.n_signal - 1:] == ["</Region>"] + [f"<signal_{i}>" for i in range(config.n_signal)] or ex.call.region is None


def test_save_load_round_trip_and_refusals(tmp_path):
    config = VitronConfig()
    signals = Signals(config)
    with torch.no_grad(): signals.input_rows.normal_()
    path = save_signals(signals, tmp_path / "s.safetensors", {"note": "test"})
    loaded = load_signals(path, config=config, device="cpu")
    for key, value in signals.state_dict().items():
        assert torch.allclose(loaded.state_dict()[key], value.half().float()), key
    assert json.loads(path.with_suffix(".json").read_text())["note"] == "test"
    with pytest.raises(CheckpointError, match="no signal side weights"): load_signals(tmp_path / "missing.safetensors", config=config)
    save_tensors({"x": torch.zeros(1)}, tmp_path / "other.safetensors", {"kind": "generator"})
    with pytest.raises(CheckpointError, match="not the signal side"): load_signals(tmp_path / "other.safetensors", config=config)
    with pytest.raises(CheckpointError, match="another config"): load_signals(path, config=VitronConfig(n_signal=2))
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError): load_signals(truncated, config=config)


def test_committed_signals_and_record():
    from vitron_nb.model import VITRON_TINY
    signals = load_signals(config=VitronConfig(), device="cpu")
    assert signals.input_rows.abs().sum() > 0                       # trained rows, not the zero buffers
    record = json.loads(ABLATION_PATH.read_text())
    llm = json.loads((VITRON_TINY / "metrics.json").read_text())
    assert record["llm"] == {k: llm.get(k) for k in ("command", "code_commit")}, "rerun `vitron train --only signals --export`: the LLM changed"
    assert set(record["arms"]) == set(ARMS)
    for arm in record["arms"].values():
        ablation = arm["ablation"]
        for mode in MESSAGE_MODES + ("oracle",):
            row = ablation[mode]
            assert 0 <= row["ref_seg_ciou"] <= 1 and 0 <= row["vos_jf"] <= 1 and 0 <= row["t2i_accuracy"]["all"] <= 1
            assert 0 <= row["ref_seg_executed"] <= 1 and 0 <= row["t2i_executed"] <= 1
        synergy = arm["synergy"]
        assert len(synergy["points_v_s"]) == len(synergy["labels"]) == synergy["n"] * len(SIGNAL_TASKS)
    trained = json.loads(SIGNALS_PATH.with_suffix(".json").read_text())
    assert trained["synergy_weight"] > 0 and trained["init"] is not None


def test_pipeline_sends_signals_in_each_mode():
    import warnings
    from vitron_nb.pipeline import Vitron, MESSAGE_MODE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore"); vitron = Vitron.tiny(device="cpu")
    assert vitron.signals is not None and vitron.message_mode == MESSAGE_MODE == "hybrid"
    config = vitron.config
    drawn = vitron.chat("Draw a large red circle in the top left.")
    assert drawn.output_kind == "image" and drawn.output.shape == (config.image_size, config.image_size, 3)
    assert tuple(drawn.signals.shape) == (signal_rows(config), config.d_llm) and drawn.call_error is None
    assert drawn.answer.endswith("".join(f"<signal_{i}>" for i in range(config.n_signal)))
    vitron.message_mode = "text"; vitron.reset()
    worded = vitron.chat("Draw a large red circle in the top left.")
    assert worded.signals is None and worded.output_kind == "image" and worded.answer == drawn.answer
    vitron.message_mode = "sideways"; vitron.reset()
    with pytest.raises(VitronError, match="unknown message mode"): vitron.chat("Draw a large red circle in the top left.")


def test_signal_run_settings_are_refused_before_any_work():
    "Bad counts for message_ablation, and a precision other than fp32 or bf16, are named before anything is loaded or trained."
    from vitron_nb.signals import message_ablation, train_signals, signal_states
    for counts in (dict(n=0, n_videos=0, n_t2i=0), dict(n=-1), dict(n_t2i=2.5), dict(n_videos=True)):
        with pytest.raises(VitronError, match="whole numbers, at least 0"): message_ablation({}, None, **counts)
    with pytest.raises(VitronError, match="'fp32' or 'bf16'"): train_signals("unused", precision="fp16", parts_of={})
    with pytest.raises(VitronError, match="'fp32' or 'bf16'"): signal_states(None, [], [], precision="half")


def test_the_signal_side_is_tied_to_the_weights_it_was_trained_against(tmp_path, monkeypatch):
    "The committed record names the committed model's sha256; a record naming other weights makes the pipeline warn and go without signals."
    import vitron_nb.signals as S
    from vitron_nb.core import file_sha256
    from vitron_nb.model import VITRON_TINY, load_trained
    from vitron_nb.pipeline import _committed_signals
    record = json.loads(ABLATION_PATH.read_text())
    assert record["llm_sha256"] == file_sha256(VITRON_TINY / "vitron.safetensors"), "rerun `vitron train --only signals --export`: the LLM changed"
    model = load_trained(VITRON_TINY, device="cpu")
    assert isinstance(_committed_signals(model), Signals)
    other = tmp_path / "ablation.json"
    other.write_text(json.dumps(record | {"llm_sha256": "0" * 64}))
    monkeypatch.setattr(S, "ABLATION_PATH", other)
    with pytest.warns(UserWarning, match="trained against other VITRON weights"):
        assert _committed_signals(model) is None
