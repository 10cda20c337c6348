"The referring segmenter: instructions become SAM prompt tokens; hybrid with a box; resumable fine-tuning; refused inputs."
import json
import numpy as np
import pytest
import torch
from vitron_nb.core import VitronConfig, VitronError, CheckpointError
from vitron_nb.world import sample_scene
from vitron_nb.referring import (TEXT_PROMPT_TOKENS, TextPrompt, build_referring, decode_with_text, instruction_words, segment_text,
                                 text_picture, fine_tune_batch, referring_loss, save_referring, load_referring, track_text)
from vitron_nb.segmenter import _embed, _prompt_tensors

TINY = VitronConfig(d_vision=16, vision_layers=1, vision_heads=2)


@pytest.fixture(scope="module")
def clip():
    from vitron_nb.vision import load_clip
    return load_clip(device="cpu")


def test_instruction_words_strip_the_label_and_refuse_nothing():
    assert instruction_words("segmentation: the small red circle") == "the small red circle"
    assert instruction_words("Tracking:blue square") == "blue square"
    for bad in ("segmentation:", "   "):
        with pytest.raises(VitronError, match="names nothing"): instruction_words(bad)
    with pytest.raises(VitronError, match="must be text"): instruction_words(None)


def test_text_prompt_shapes_and_refusals():
    prompt = TextPrompt(d_text=12, width=8, n_tokens=3)
    assert prompt(torch.randn(5, 12)).shape == (5, 3, 8)
    with pytest.raises(VitronError, match=r"\(K, 12\)"): prompt(torch.randn(5, 7))


def test_text_tokens_and_a_box_decode_together():
    model = build_referring(TINY)
    width = model.sam.prompt_encoder.embed_dim
    with torch.no_grad():
        embedding = _embed(model.sam, np.zeros((1, 64, 64, 3), np.uint8))
        tokens = torch.randn(2, TEXT_PROMPT_TOKENS, width)
        text_only, _ = decode_with_text(model, embedding, tokens)
        hybrid, iou = decode_with_text(model, embedding, tokens, _prompt_tensors(64, boxes=[(0.1, 0.1, 0.5, 0.5)] * 2))
    assert text_only.shape == hybrid.shape == (2, 64, 64) and iou.shape == (2,)
    assert not torch.allclose(text_only, hybrid)              # the box tokens really join the text tokens


def test_segment_text_refuses_mismatched_inputs(clip):
    model = build_referring(TINY)
    picture = sample_scene(np.random.default_rng(0), n_objects=2).render()[0]
    with pytest.raises(VitronError, match="one instruction per picture"): segment_text(model, clip, picture[None], ["a", "b"])
    with pytest.raises(VitronError, match="64 x 64"): segment_text(model, clip, np.zeros((1, 32, 32, 3), np.uint8), ["red circle"])
    with pytest.raises(VitronError, match="names nothing"): segment_text(model, clip, picture[None], ["segmentation: "])
    assert segment_text(model, clip, picture[None], ["segmentation: red circle"]).shape == (1, 64, 64)
    with pytest.raises(VitronError, match="T >= 2"): track_text(model, clip, picture[None], "segmentation: red circle")


def test_text_pictures_name_one_object_each():
    sample = text_picture(np.random.default_rng(3), VitronConfig(), count=5)
    assert len(sample["texts"]) == 5 and sample["targets"].shape == (5, 64, 64) and sample["targets"].any((1, 2)).all()
    batch = fine_tune_batch(np.random.default_rng(4), VitronConfig(), batch_size=6, text_share=1.0)
    assert {b["kind"] for b in batch} == {"text"}
    batch = fine_tune_batch(np.random.default_rng(4), VitronConfig(), batch_size=6, text_share=0.0)
    assert "text" not in {b["kind"] for b in batch}


def test_the_loss_trains_the_text_route(clip):
    torch.manual_seed(0)
    model = build_referring(TINY)
    batch = fine_tune_batch(np.random.default_rng(5), VitronConfig(), batch_size=2, text_share=1.0)
    loss, parts = referring_loss(model, clip, batch)
    loss.backward()
    assert torch.isfinite(loss) and parts["text_iou"] is not None
    assert model.text_prompt.mlp[0].weight.grad.abs().sum() > 0


def test_save_load_round_trip_and_refusals(tmp_path):
    torch.manual_seed(1)
    model = build_referring(VitronConfig())
    path = save_referring(model, tmp_path / "referring.safetensors", {"note": "test"})
    again = load_referring(path, device="cpu")
    for (name, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        torch.testing.assert_close(a.half().float(), b.float(), msg=name)
    assert json.loads(path.with_suffix(".json").read_text())["note"] == "test"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError): load_referring(path)
    with pytest.raises(CheckpointError): load_referring(tmp_path / "missing.safetensors")
