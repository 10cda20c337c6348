"The editor: an inpainting U-Net, compositing that keeps the rest exactly, refused inputs, resumable training, committed weights."
import json
import numpy as np
import pytest
import torch
from vitron_nb.core import VitronConfig, VitronError
from vitron_nb.world import HELD_OUT, COLOURS, SHAPES
from vitron_nb.generator import GENERATOR_PATH
from vitron_nb.editor import (EDITOR_PATH, EDIT_CHANNELS, build_editor, edit_ids, grow_mask, box_mask, edit_region, edit_pair,
                              training_batch, edit_image, edit_video, train_editor, load_editor, evaluate_image_edits)

TINY = VitronConfig(d_signal=16)     # a narrower condition embedding: the smallest config the editor changes with


@pytest.fixture(scope="module")
def untrained():
    torch.manual_seed(0)
    return build_editor(TINY).eval()


@pytest.fixture(scope="module")
def pair(): return edit_pair(np.random.default_rng(11), VitronConfig(), "test")


def test_architecture_and_shapes(untrained):
    assert type(untrained.unet).__name__ == "UNet2DModel" and untrained.unet.config.in_channels == EDIT_CHANNELS == 7
    assert untrained.unet.config.class_embed_type == "identity" and untrained.scheduler.config.prediction_type == "v_prediction"
    with torch.no_grad():
        out = untrained(torch.zeros(2, 3, 32, 32), torch.tensor([0, 999]), torch.zeros(2, 4, 32, 32), edit_ids([dict(colour="red", shape="circle")] * 2))
    assert out.shape == (2, 3, 32, 32)
    assert edit_ids([dict(colour="tangerine", shape="plus sign"), dict(colour="red", shape="circle")]).tolist() == [[5, 4], [0, 0]]


def test_regions():
    dot = np.zeros((8, 8), bool); dot[3:5, 2:4] = True
    assert grow_mask(dot, 1).sum() == 16 and grow_mask(dot, 2).sum() == 36 and np.array_equal(grow_mask(dot, 0), dot)
    ring = np.zeros((8, 8), bool); ring[2, 2] = ring[5, 5] = True
    assert edit_region(ring, "shape", 0).sum() == 16 and edit_region(ring, "colour", 0).sum() == 2
    assert box_mask((0.0, 0.0, 0.5, 0.25), 8).sum() == 4 * 2


def test_training_batches_are_train_split_edits():
    pictures, context, ids = training_batch(np.random.default_rng(3), VitronConfig(), 48)
    assert pictures.shape == (48, 3, 32, 32) and context.shape == (48, 4, 32, 32) and -1 <= float(pictures.min()) <= float(pictures.max()) <= 1
    assert not {(list(COLOURS)[c], SHAPES[s]) for c, s in ids.tolist()} & HELD_OUT
    hole = (context[:, 3:] > 0).expand(-1, 3, -1, -1)
    assert hole.any() and (context[:, :3][hole] == 0).all()            # nothing of the old object is shown inside the hole


def test_compositing_keeps_outside_pixels_exactly(untrained, pair):
    after = edit_image(untrained, pair["source"], pair["mask"], pair["attributes"], steps=2, seed=1)
    inside = grow_mask(pair["mask"])
    assert after.shape == (64, 64, 3) and after.dtype == np.uint8
    assert np.array_equal(after[~inside], pair["source"][~inside]) and not np.array_equal(after[inside], pair["source"][inside])
    assert np.array_equal(after, edit_image(untrained, pair["source"], pair["mask"], pair["attributes"], steps=2, seed=1))


def test_video_edit_one_noise_for_every_frame(untrained, pair):
    video = np.stack([pair["source"]] * 3)
    masks = np.stack([pair["mask"], pair["mask"], np.zeros_like(pair["mask"])])
    out = edit_video(untrained, video, masks, pair["attributes"], steps=2)
    assert out.shape == video.shape and np.array_equal(out[0], out[1])       # the same frame and mask: the same edit
    assert np.array_equal(out[2], video[2])                                 # the object hidden: the frame is kept
    single = edit_image(untrained, pair["source"], pair["mask"], pair["attributes"], steps=2)
    # the image route's edit: equal but for uint8 rounding, where a batch of three frames and a batch of one can round a
    # pixel differently on some processors (another noise would move the edited pixels by tens of levels)
    assert np.abs(out[0].astype(int) - single.astype(int)).max() <= 1


@pytest.mark.parametrize("change, message", [
    (dict(image=np.zeros((32, 32, 3), np.uint8)), "expected a uint8 64 x 64 x 3"),
    (dict(image=np.zeros((64, 64, 3), np.float32)), "must be uint8"),
    (dict(mask=np.zeros((64, 64), bool)), "mask is empty"),
    (dict(mask=np.ones((32, 32), bool)), "mask has shape"),
    (dict(attributes=dict(colour="pink", shape="circle")), "unknown colour 'pink'"),
    (dict(attributes=dict(colour="red")), "no 'shape'"),
    (dict(attributes=["red circle"]), "one dict"),
    (dict(steps=0), "steps"), (dict(guidance=-1.0), "guidance")])
def test_bad_image_edits_are_refused(untrained, pair, change, message):
    call = dict(image=pair["source"], mask=pair["mask"], attributes=pair["attributes"], steps=2) | change
    with pytest.raises(VitronError, match=message): edit_image(untrained, **call)


def test_bad_video_edits_and_regions_are_refused(untrained, pair):
    video = np.stack([pair["source"]] * 2)
    with pytest.raises(VitronError, match="T x 64 x 64 x 3"): edit_video(untrained, pair["source"], pair["mask"], pair["attributes"])
    with pytest.raises(VitronError, match="mask is empty"): edit_video(untrained, video, np.zeros((2, 64, 64), bool), pair["attributes"])
    with pytest.raises(VitronError, match="mask has shape"): edit_video(untrained, video, pair["mask"], pair["attributes"])
    with pytest.raises(VitronError, match="'colour' or 'shape'"): edit_region(pair["mask"], "size")
    with pytest.raises(VitronError, match="empty"): edit_region(np.zeros((8, 8), bool), "shape")


def test_train_and_resume_round_trip(tmp_path):
    straight, _ = train_editor(TINY, tmp_path / "a", steps=2, batch_size=2, progress=False, bf16=False, init="random")
    train_editor(TINY, tmp_path / "b", steps=2, batch_size=2, progress=False, stop_at=1, bf16=False, init="random")
    assert (tmp_path / "b" / "checkpoint.safetensors").exists()
    resumed, record = train_editor(TINY, tmp_path / "b", steps=2, batch_size=2, progress=False, bf16=False, init="random")
    assert record["resumed_from"] == 1 and len(record["losses"]) == 2
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name
    loaded = load_editor(tmp_path / "b" / "checkpoint.safetensors", device="cpu")          # a checkpoint loads with its EMA weights
    assert all(torch.allclose(a, b.float()) for a, b in zip(resumed.state_dict().values(), loaded.state_dict().values()))
    with pytest.raises(VitronError): load_editor(GENERATOR_PATH, device="cpu")             # another specialist's weights are refused
    with pytest.raises(VitronError): train_editor(TINY, tmp_path / "c", steps=0)


def test_committed_weights_and_held_out_record():
    editor = load_editor(device="cpu")
    assert EDITOR_PATH.stat().st_size < 8e6 and all(not p.requires_grad for p in editor.parameters())
    record = json.loads(EDITOR_PATH.with_suffix(".json").read_text())
    images, videos = record["image_edits"], record["video_edits"]
    assert images["split"] == videos["split"] == "test" and images["n"] >= 100 and videos["n"] >= 30
    assert 0 < images["unseen"] < images["n"] and images["colour_edits"]["n"] + images["shape_edits"]["n"] == images["n"]
    assert images["unedited_changed"]["all"] < 0.05                # the judge does not already see the new attributes before editing
    for source in ("segmenter", "true"): assert set(videos[source]) == {"changed_every_frame", "changed_frames", "psnr_outside"}
    assert record["steps"] == len(record["losses"]) and record["fp16_check"]["largest_change"]["changed"] <= 0.02


def test_committed_editor_changes_held_out_colours():
    metrics = evaluate_image_edits(load_editor(device="cpu"), n=12, seed=99, steps=10)[0]     # fresh test-split edits
    assert metrics["split"] == "test" and metrics["colour_edits"]["changed"] >= 0.6 and metrics["psnr_outside"]["all"] >= 22


def test_cli_trains_and_resumes_the_editor(tmp_path):
    import contextlib, io
    from vitron_nb.cli import main
    def run(*argv):
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()): code = main(list(argv))
        return code, out.getvalue()
    code, out = run("train", "--only", "editor", "--steps", "1", "--out", str(tmp_path))
    assert code == 0 and json.loads(out[out.index("{"):])["steps"] == 1 and (tmp_path / "checkpoint.safetensors").exists()
    code, out = run("train", "--only", "editor", "--steps", "2", "--out", str(tmp_path))
    record = json.loads(out[out.index("{"):])
    assert code == 0 and record["resumed_from"] == 1 and record["steps"] == 2 and record["bf16"] is True
