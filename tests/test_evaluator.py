"""The evaluator network: committed weights judge fresh real renders correctly, the judging API has the documented
shapes and errors, and training resumes from its checkpoint."""
import json

import numpy as np
import pytest
import torch

from vitron_nb.core import CheckpointError, VitronConfig, VitronError
from vitron_nb.evaluator import (EVALUATOR_PATH, Evaluator, HEADS, MOTIONS, crop_boxes, degrade, evaluate_evaluator,
                                 image_features, judge_crops, judge_images, judge_videos, load_checkpoint,
                                 load_evaluator, real_scene, train_evaluator, video_features)
from vitron_nb.world import COLOURS, HELD_OUT, SHAPES, mask_box, sample_scene, target_scene


@pytest.fixture(scope="module")
def evaluator():
    return load_evaluator(device="cpu")


def test_committed_weights_exist_and_are_small():
    assert EVALUATOR_PATH.is_file(), "run `vitron train --only evaluator` to make them"
    assert EVALUATOR_PATH.stat().st_size < 4_000_000
    record = json.loads(EVALUATOR_PATH.with_suffix(".json").read_text())
    for head in ("colour", "shape", "size", "position"): assert record["metrics"][head] >= 0.99
    assert record["metrics"]["motion"] >= 0.98


def test_accuracy_on_fresh_real_renders(evaluator):
    metrics = evaluate_evaluator(evaluator, n=40, seed=4242, sides=(32,))
    for head in ("colour", "shape", "size", "position", "video_colour", "video_shape", "motion", "crop_colour",
                 "crop_shape", "colour@32", "shape@32", "motion@32"):
        assert metrics[head] >= 0.95, (head, metrics[head])


def test_judges_a_named_request_and_held_out_combinations(evaluator):
    rng = np.random.default_rng(11)
    images = [real_scene(c, s, "large", "bottom left", rng, background="checker", split="test").render()[0]
              for c, s in sorted(HELD_OUT)]
    readings = judge_images(evaluator, np.stack(images))
    assert [(r["colour"], r["shape"]) for r in readings] == sorted(HELD_OUT)
    assert all(r["size"] == "large" and r["position"] == "bottom left" for r in readings)
    assert all(0 < r["confidence"] <= 1 for r in readings)


def test_judges_motion_and_low_resolution(evaluator):
    rng = np.random.default_rng(5)
    videos = np.stack([target_scene("blue", "square", "medium", "centre", rng, direction=d, speed="slowly",
                                    split="test").render_video()[0] for d in MOTIONS])
    assert [r["motion"] for r in judge_videos(evaluator, videos)] == MOTIONS
    small = torch.from_numpy(videos).permute(0, 1, 4, 2, 3).float() / 255      # N x T x 3 x H x W floats
    small = torch.nn.functional.interpolate(small.flatten(0, 1), size=32, mode="bilinear", antialias=True)
    assert [r["motion"] for r in judge_videos(evaluator, small.reshape(5, 8, 3, 32, 32))] == MOTIONS


def test_output_shapes(evaluator):
    config = evaluator.config
    image = target_scene("green", "cross", "small", "top right", np.random.default_rng(0)).render()[0]
    assert len(judge_images(evaluator, image)) == 1                            # one image, not a batch
    assert set(judge_images(evaluator, image)[0]) == {*HEADS, "confidence"}
    assert image_features(evaluator, np.stack([image] * 3)).shape == (3, config.d_evaluator)
    video = np.zeros((config.n_frames, 16, 16, 3), np.uint8)
    assert set(judge_videos(evaluator, video)[0]) == {"colour", "shape", "motion", "confidence"}
    assert video_features(evaluator, np.stack([video] * 2)).shape == (2, config.d_evaluator)
    scene = sample_scene(np.random.default_rng(2), n_objects=3)
    picture, masks = scene.render()
    readings = judge_crops(evaluator, picture, [mask_box(m) for m in masks] + [None])
    assert [(r["colour"], r["shape"]) for r in readings[:3]] == [(o.colour, o.shape) for o in scene.objects]
    assert readings[3] == {"colour": None, "shape": None, "confidence": 0.0}
    assert judge_crops(evaluator, picture, []) == []
    assert crop_boxes(torch.rand(3, 64, 64), [(0.1, 0.1, 0.3, 0.2)], 40).shape == (1, 3, 40, 40)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((64, 64), np.uint8), "H x W x 3"),
    (np.zeros((2, 64, 64, 5), np.uint8), "3 colour channels"),
    (np.full((64, 64, 3), 255.0), "divide it by 255"),
    (np.zeros((64, 64, 3), np.int64), "dtype"),
    (np.zeros((0, 64, 64, 3), np.uint8), "empty"),
    (np.zeros((2, 2, 3), np.uint8), "too small"),
])
def test_clear_errors_for_wrong_images(evaluator, bad, message):
    with pytest.raises(VitronError, match=message): judge_images(evaluator, bad)


def test_clear_errors_elsewhere(evaluator, tmp_path):
    with pytest.raises(VitronError, match="T x H x W x 3"): judge_videos(evaluator, np.zeros((64, 64, 3), np.uint8))
    image = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(VitronError, match="one image"): judge_crops(evaluator, np.stack([image, image]), [(0, 0, 1, 1)])
    with pytest.raises(VitronError, match="need x1 < x2"): judge_crops(evaluator, image, [(0.5, 0.1, 0.2, 0.3)])
    with pytest.raises(VitronError, match="outside the image"): judge_crops(evaluator, image, [(1.2, 0.1, 1.5, 0.3)])
    with pytest.raises(VitronError, match="expected an Evaluator"): judge_images(None, image)
    with pytest.raises(CheckpointError, match="vitron train --only evaluator"): load_evaluator(tmp_path / "none.safetensors")


def test_degrade_keeps_size_and_blurs():
    images = torch.rand(2, 3, 64, 64)
    blurred = degrade(images, 16)
    assert blurred.shape == images.shape and blurred.std() < images.std() / 2
    assert torch.equal(degrade(images, None), images)


def test_training_resumes_from_its_checkpoint(tmp_path):
    config = VitronConfig.from_preset("tiny", evaluator_width=8, d_evaluator=16, evaluator_size=32)
    first = train_evaluator(config, tmp_path, steps=6, batch_size=8, checkpoint_every=3, eval_n=0, progress=False)
    assert first["resumed_from"] == 0
    model = Evaluator(config)
    assert load_checkpoint(tmp_path / "checkpoint.safetensors", model)["step"] == 6
    before = {k: v.clone() for k, v in model.state_dict().items()}
    second = train_evaluator(config, tmp_path, steps=9, batch_size=8, checkpoint_every=3, eval_n=0, progress=False)
    assert second["resumed_from"] == 6 and second["steps"] == 9          # continued from step 6, not 0
    after = Evaluator(config)
    assert load_checkpoint(tmp_path / "checkpoint.safetensors", after)["step"] == 9
    assert any(not torch.equal(before[k], v) for k, v in after.state_dict().items())   # and it trained on
    assert load_evaluator(tmp_path / "checkpoint.safetensors", "cpu").config == config  # a run's model loads
    with pytest.raises(CheckpointError, match="another config"):
        train_evaluator(VitronConfig.from_preset("tiny", evaluator_width=8, d_evaluator=24, evaluator_size=32),
                        tmp_path, steps=12, batch_size=8, eval_n=0, progress=False)
