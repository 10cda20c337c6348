"The animator: a 3D U-Net planner and a residual diffusion 3D U-Net that set a first frame in motion or make a video from words; refused inputs, resumable training, committed weights."
import json
import numpy as np
import pytest
import torch
from vitron_nb.core import VitronConfig, VitronError, CheckpointError
from vitron_nb.world import HELD_OUT, COLOURS, SHAPES
from vitron_nb.generator import GENERATOR_PATH
from vitron_nb.animator import (ANIMATOR_PATH, ANIMATOR_INPUTS, PLANNER_INPUTS, PLANNER_OUTPUTS, ANIMATOR_ATTRIBUTES, build_animator, animation_ids, training_batch,
                                first_frame_context, motion_channels, warp, animate, keyframe_video, train_animator, save_animator,
                                load_animator, psnr)


@pytest.fixture(scope="module")
def untrained():
    torch.manual_seed(0)
    return build_animator().eval()


def test_architecture_and_shapes(untrained):
    unet, planner = untrained.unet, untrained.planner
    assert type(unet).__name__ == type(planner).__name__ == "UNet3DConditionModel"
    assert (unet.config.in_channels, planner.config.in_channels, planner.config.out_channels) == (ANIMATOR_INPUTS, PLANNER_INPUTS, PLANNER_OUTPUTS) == (12, 6, 5)
    assert (unet.config.sample_size, planner.config.sample_size) == (32, 16)
    assert unet.config.down_block_types[-1] == "CrossAttnDownBlock3D" and set(unet.config.down_block_types[:-1]) == {"DownBlock3D"}
    assert untrained.scheduler.config.prediction_type == "v_prediction"
    ids = animation_ids([dict(colour="red", shape="circle", size="large", motion="left", speed="quickly"), dict(motion="still")])
    first = first_frame_context(torch.zeros(2, 3, 32, 32), torch.tensor([True, False]))
    assert first.shape == (2, 4, 32, 32) and first[:, 3].flatten(1).mean(1).tolist() == [1.0, 0.0]
    with torch.no_grad():
        plan = untrained.plan(first, ids)
        out = untrained(torch.zeros(2, 3, 8, 32, 32), torch.tensor([0, 999]), first, ids, plan)
    assert plan.shape == out.shape == (2, 3, 8, 32, 32)
    assert untrained.tokens(ids).shape == (2, len(ANIMATOR_ATTRIBUTES), untrained.unet.config.cross_attention_dim)


def test_motion_channels_hold_how_far_the_object_has_gone():
    ids = animation_ids([dict(motion="right", speed="quickly"), dict(motion="up", speed="slowly"), dict(motion="still")])
    channels = motion_channels(ids, 8, 4)
    assert channels.shape == (3, 2, 8, 4, 4) and (channels == channels[..., :1, :1]).all()    # one value per frame, over the whole frame
    # quickly = 4 px a frame at 64 px, so 7 frames on: 28 px, 0.875 of the [-1, 1] span; up is -y; still never moves
    torch.testing.assert_close(channels[:, :, -1, 0, 0], torch.tensor([[0.875, 0.0], [0.0, -0.4375], [0.0, 0.0]]))
    torch.testing.assert_close(channels[0, 0, :, 0, 0], torch.arange(8) * 0.125)


def test_warp_moves_a_picture_along_the_flow():
    picture = torch.zeros(1, 3, 16, 16); picture[:, :, 4, 4] = 1.0                  # one lit pixel at x 4, y 4
    flow = torch.zeros(1, 2, 3, 16, 16); flow[:, 0, 1] = 0.25; flow[:, 1, 2] = -0.25    # frame 1: 2 px right; frame 2: 2 px up
    moved = warp(picture, flow)
    assert moved.shape == (1, 3, 3, 16, 16)
    lit = [tuple(int(i) for i in (moved[0, 0, t] == moved[0, 0, t].max()).nonzero()[0]) for t in range(3)]
    assert lit == [(4, 4), (4, 6), (2, 4)]                                            # (y, x): still, right, up
    torch.testing.assert_close(warp(picture, torch.zeros(1, 2, 2, 16, 16))[:, :, 1], picture)


def test_condition_ids_read_synonyms_and_refuse_bad_words():
    assert animation_ids(dict(colour="crimson", shape="ball", size="huge", motion="left", speed="fast")).tolist() == [[0, 0, 2, 0, 1]]
    assert animation_ids(dict(motion="still")).tolist() == [[-1, -1, -1, 4, 0]]          # unsaid words; speed defaults to slowly
    with pytest.raises(VitronError, match="no 'motion'"): animation_ids(dict(colour="red", shape="circle"))
    with pytest.raises(VitronError, match="unknown colour 'pink'"): animation_ids(dict(colour="pink", motion="left"))
    with pytest.raises(VitronError, match="unknown motion 'sideways'"): animation_ids(dict(motion="sideways"))
    with pytest.raises(VitronError, match="must be a dict"): animation_ids(["left"])
    with pytest.raises(VitronError, match="no requests"): animation_ids([])


def test_training_videos_are_train_split_and_move():
    videos, ids = training_batch(np.random.default_rng(3), VitronConfig(), 16)
    assert videos.shape == (16, 3, 8, 32, 32) and ids.shape == (16, 5) and videos.min() >= -1 and videos.max() <= 1
    assert not any((list(COLOURS)[c], SHAPES[s]) in HELD_OUT for c, s, *_ in ids.tolist())
    moving = [row[3] != 4 for row in ids.tolist()]
    change = (videos[:, :, -1] - videos[:, :, 0]).abs().flatten(1).amax(1)
    assert all((c > 0.1) == m for c, m in zip(change.tolist(), moving))      # still videos do not change, moving ones do


def test_animate_refuses_bad_inputs(untrained):
    want = [dict(colour="red", shape="circle", size="large", motion="left")]
    with pytest.raises(VitronError, match="steps"): animate(untrained, want, steps=0)
    with pytest.raises(VitronError, match="guidance"): animate(untrained, want, guidance=-1.0, steps=1)
    with pytest.raises(VitronError, match="uint8 N x H x W x 3"): animate(untrained, want, np.zeros((64, 64, 3), np.float32), steps=1)
    with pytest.raises(VitronError, match="2 first frames for 1 requests"): animate(untrained, want, np.zeros((2, 64, 64, 3), np.uint8), steps=1)
    with pytest.raises(VitronError, match="must name colour, shape and size"): keyframe_video(untrained, None, [dict(motion="left")], steps=1)


def test_animate_shapes_and_determinism(untrained):
    want = [dict(colour="red", shape="circle", size="large", motion="left"), dict(motion="up", speed="quickly")]
    first = np.full((2, 48, 48, 3), 120, np.uint8)                     # any picture size: resized to the sampled side
    videos = animate(untrained, want, first, steps=2, seed=1)
    assert videos.shape == (2, 8, 64, 64, 3) and videos.dtype == np.uint8
    assert np.array_equal(videos, animate(untrained, want, first, steps=2, seed=1))
    assert animate(untrained, want[:1], None, steps=1).shape == (1, 8, 64, 64, 3)
    plans = animate(untrained, want, first, plan_only=True)
    assert plans.shape == videos.shape and np.array_equal(plans, animate(untrained, want, first, plan_only=True, seed=5))   # no noise in a plan
    assert not np.array_equal(plans, videos)
    assert psnr(videos[0], videos[0]) == float("inf") and 0 < psnr(videos[0], 255 - videos[0]) < 60


def test_training_resumes_exactly(tmp_path):
    smoke = dict(steps=3, plan_steps=2, batch_size=1, progress=False, bf16=False)
    straight, _ = train_animator(out_dir=tmp_path / "a", **smoke)
    _, first = train_animator(out_dir=tmp_path / "b", stop_at=1, **smoke)          # stopped inside the planner's phase
    resumed, second = train_animator(out_dir=tmp_path / "b", **smoke)
    assert (first["steps"], second["resumed_from"], second["steps"], second["plan_steps"]) == (1, 1, 3, 2)
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()): torch.testing.assert_close(a, b, msg=name)


def test_save_load_round_trip_without_pickle(untrained, tmp_path):
    path = save_animator(untrained, tmp_path / "animator.safetensors", {"note": "untrained"})
    loaded = load_animator(path, device="cpu")
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    for (name, a), b in zip(untrained.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a.half().float() if a.is_floating_point() else a, b), name
    record = json.loads(path.with_suffix(".json").read_text())
    assert record["note"] == "untrained" and record["dtype"] == "float16" and record["sizes"]["sample_size"] == 32
    with pytest.raises(CheckpointError, match="not the animator"): load_animator(GENERATOR_PATH)
    with pytest.raises(CheckpointError, match="no animator weights"): load_animator(tmp_path / "missing.safetensors")


@pytest.mark.skipif(not ANIMATOR_PATH.is_file(), reason="no committed animator weights")
def test_committed_record_is_consistent():
    record = json.loads(ANIMATOR_PATH.with_suffix(".json").read_text())
    metrics = record["metrics"]
    assert ANIMATOR_PATH.stat().st_size < 12e6 and record["dtype"] == "float16" and metrics["split"] == "test"
    assert len(record["losses"]) == record["steps"] and record["seconds_per_step"] == round(record["train_seconds"] / record["steps"], 3)
    for route in ("t2v", "t2v_keyframe", "i2v"):
        scores = metrics[route]
        assert 0 < scores["unseen"] < metrics["n"], route                  # both seen and unseen combinations measured
        for key in ("attribute_accuracy", "motion_accuracy", "colour", "shape", "motion"):
            assert set(scores[key]) == {"all", "seen", "unseen"} and all(0 <= v <= 1 for v in scores[key].values()), (route, key)
    assert metrics["i2v"]["first_frame_psnr"]["all"] > 15
    assert record["fp16_check"]["largest_change"] <= 0.1
