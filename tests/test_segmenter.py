"The segmenter: prompts in, masks out; tracking by propagation; committed weights; resumable training; refused files."
import json
import numpy as np
import pytest
import torch
from vitron_nb.core import VitronConfig, VitronError, CheckpointError
from vitron_nb.world import Scene, WorldObject, sample_scene, sample_video_scene, mask_box
from vitron_nb.tasks import make_examples
from vitron_nb.metrics import ciou
from vitron_nb.segmenter import (SEGMENTER_PATH, build_segmenter, segmenter_sizes, segment, track, region_prompt, oracle_click,
                                 mask_loss, train_segmenter, save_segmenter, load_segmenter, training_picture, _prompt_tensors)
from vitron_nb.regions import Region

TINY = VitronConfig(d_vision=16, vision_layers=1, vision_heads=2)


@pytest.fixture(scope="module")
def segmenter(): return load_segmenter(device="cpu")

@pytest.fixture(scope="module")
def picture(): return sample_scene(np.random.default_rng(11), split="test", n_objects=3).render()


def test_sizes_and_architecture():
    sizes = segmenter_sizes(VitronConfig())
    assert (sizes["patch_size"], sizes["grid"], sizes["width"], sizes["depth"], sizes["global_blocks"]) == (4, 16, 64, 4, (1, 3))
    model = build_segmenter(TINY)
    assert type(model).__module__ == "segment_anything.modeling.sam"
    with torch.no_grad():
        embedding = model.image_encoder(torch.zeros(1, 3, 64, 64))
        logits, iou = model.mask_decoder(embedding, model.prompt_encoder.get_dense_pe(),
                                         *model.prompt_encoder(points=None, boxes=torch.tensor([[4.0, 4, 20, 20]]), masks=None), False)
    assert embedding.shape == (1, 8, 16, 16) and logits.shape == (1, 1, 64, 64) and iou.shape == (1, 1)   # low-res = full size
    torch.testing.assert_close(model.pixel_std.flatten(), torch.tensor([45.9, 40.035, 44.625]))      # vision's IMAGE_STD x 255


def test_prompt_coordinates_by_hand():
    tensors = _prompt_tensors(64, boxes=[(0.25, 0.5, 0.75, 1.0)], points=None, masks=np.eye(64, dtype=bool)[None])
    assert tensors["boxes"].tolist() == [[15.5, 31.5, 47.5, 63.5]]      # SAM adds 0.5 back: its encoding sees 16/64 etc.
    assert tensors["masks"].shape == (1, 1, 64, 64) and tensors["masks"].min() == -1 and tensors["masks"].max() == 1
    coords, labels = _prompt_tensors(64, points=[[(0.5, 0.5)], [(0, 0), (1, 1)]])["points"]
    assert labels.tolist() == [[1, -1], [1, 1]] and coords[1].tolist() == [[-0.5, -0.5], [63.5, 63.5]]
    assert region_prompt((16, 16, 32, 48), 64) == {"boxes": [(0.25, 0.25, 0.5, 0.75)]}
    assert oracle_click(np.pad(np.ones((5, 5), bool), ((10, 49), (20, 39)))) == (22.5 / 64, 12.5 / 64)   # the centre


def test_loss_by_hand():
    square = torch.zeros(1, 8, 8); square[0, 2:6, 2:6] = 1
    good, parts = mask_loss(torch.where(square > 0, 20.0, -20.0), square, torch.ones(1))
    assert parts["iou"] == 1.0 and float(good) < 1e-3
    half, parts = mask_loss(torch.where(square > 0, 20.0, -20.0), torch.zeros(1, 8, 8), torch.ones(1))
    assert parts["iou"] == 0.0 and parts["dice"] > 0.9 and float(half) > 1   # 16 false pixels, predicted IoU 1 but real 0


def test_segment_shapes_and_errors(segmenter, picture):
    image, masks = picture
    boxes = [mask_box(m) for m in masks]
    out = segment(segmenter, np.stack([image] * 3), boxes=boxes)
    assert out.shape == (3, 64, 64) and out.dtype == bool
    assert segment(segmenter, image, points=[oracle_click(masks[0])]).shape == (1, 64, 64)
    assert segment(segmenter, image, masks=masks[1]).shape == (1, 64, 64)
    for kwargs, message in [({}, "at least one prompt"), (dict(boxes=(10, 10, 30, 30)), "not a normalised box"),
                            (dict(boxes=(0.6, 0.1, 0.2, 0.5)), "x1 < x2"), (dict(boxes=[boxes[0]] * 2), r"\(1, 4\)"),
                            (dict(points=[(0.1, 0.1)] * 4), "N = 1..3"), (dict(points=[(1.5, 0.2)]), "normalised"),
                            (dict(masks=np.ones((32, 32), bool)), r"\(1, 64, 64\)")]:
        with pytest.raises(VitronError, match=message): segment(segmenter, image, **kwargs)
    with pytest.raises(VitronError, match="64 x 64"): segment(segmenter, image[:40], boxes=boxes[0])
    with pytest.raises(VitronError, match="uint8"): segment(segmenter, image / 255, boxes=boxes[0])


def test_track_shapes_errors_and_hidden_frames(segmenter):
    scene = Scene([WorldObject("blue", "square", "large", 20, 32, dx=2.0, disappear=3),
                   WorldObject("green", "circle", "medium", 50, 50)], background="plain", background_seed=1, n_frames=8)
    video, masks = scene.render_video()
    masks_hidden = masks[0].copy(); video = video.copy()
    # the square vanishes in frames 4-5 and comes back (re-rendered) in frames 6-7 where it would have been
    back = Scene([WorldObject("blue", "square", "large", 20 + 2 * 6, 32)], background="plain", background_seed=1).render()
    video[6:] = back[0]; masks_hidden[6:] = back[1][0]
    predicted = track(segmenter, video, mask_box(masks[0, 0]))
    assert predicted.shape == (8, 64, 64) and predicted.dtype == bool
    assert not predicted[4:6].any()                                   # hidden: nothing predicted
    assert (predicted[6] & masks_hidden[6]).sum() > 0.8 * masks_hidden[6].sum()   # found again from the last prompt (frame 3's)
    assert track(segmenter, video, Region("click", points=[oracle_click(masks[0, 0])])).shape == (8, 64, 64)
    with pytest.raises(VitronError, match=r"\(T, H, W, 3\)"): track(segmenter, video[0], (0.1, 0.1, 0.5, 0.5))
    with pytest.raises(VitronError, match="could not read a region"): track(segmenter, video, "the blue square")


def test_committed_weights_reach_a_ciou_floor(segmenter):
    record = json.loads(SEGMENTER_PATH.with_suffix(".json").read_text())
    assert record["seed"] == 0 and record["steps"] > 0 and record["metrics"]["split"] == "test"
    assert SEGMENTER_PATH.stat().st_size < 5e6
    assert not any(p.requires_grad for p in segmenter.parameters()) and not segmenter.training
    examples = make_examples(["ref_seg"], 20, "test", seed=4242)          # fresh held-out pictures
    predicted = segment(segmenter, np.stack([e.image for e in examples]), boxes=[e.call.region for e in examples])
    assert ciou(list(predicted), [e.answer.mask for e in examples]) >= 0.8


def test_resume_equals_uninterrupted(tmp_path):
    settings = dict(config=TINY, steps=2, batch_size=2, prompts_per_image=2, progress=False)
    straight, _ = train_segmenter(out_dir=tmp_path / "a", **settings)
    _, first = train_segmenter(out_dir=tmp_path / "b", stop_at=1, **settings)
    resumed, second = train_segmenter(out_dir=tmp_path / "b", **settings)
    assert (first["steps"], second["resumed_from"], second["steps"]) == (1, 1, 2)
    fresh = build_segmenter(TINY).state_dict()
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert any(not torch.equal(fresh[k], v) for k, v in straight.state_dict().items())   # it did train


def test_training_pictures_come_from_train_split():
    from vitron_nb.world import HELD_OUT, COLOURS
    for kind in ("box", "points", "mask", "track"):
        picture = training_picture(np.random.default_rng(3), VitronConfig(), kind, 4)
        assert picture["targets"].shape == (4, 64, 64) and picture["image"].shape == (64, 64, 3)
    with pytest.raises(VitronError, match="unknown prompt kind"): training_picture(np.random.default_rng(0), VitronConfig(), "lasso")


def test_weight_files_refused(tmp_path):
    with pytest.raises(CheckpointError, match="no segmenter weights"): load_segmenter(tmp_path / "none.safetensors")
    truncated = tmp_path / "segmenter.safetensors"
    truncated.write_bytes(SEGMENTER_PATH.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated or corrupt"): load_segmenter(truncated)
    from vitron_nb.core import save_tensors
    other = save_tensors({"weight": torch.zeros(2)}, tmp_path / "clip.safetensors", {"kind": "clip"})
    with pytest.raises(CheckpointError, match="'clip' model, not the segmenter"): load_segmenter(other)
    small = save_segmenter(build_segmenter(TINY), tmp_path / "tiny.safetensors", {"seed": 0})
    assert load_segmenter(small).image_encoder.patch_embed.proj.out_channels == 8
    with pytest.raises(CheckpointError, match="does not match"): load_segmenter(small, VitronConfig())
