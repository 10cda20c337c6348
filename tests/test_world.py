"PixelWorld: exact masks, held-out combinations, motion, determinism."
import numpy as np, pytest
from vitron_nb.core import VitronConfig, VitronError
from vitron_nb.world import (COLOURS, SHAPES, HELD_OUT, WorldObject, Scene, sample_scene, sample_video_scene, target_scene,
                             mask_box, visible_spans, bounces, set_motion, position_name, shape_mask, sample_attributes)

def test_same_seed_same_scene_and_different_seed_different():
    a = sample_video_scene(np.random.default_rng(11)).render_video()[0]
    assert np.array_equal(a, sample_video_scene(np.random.default_rng(11)).render_video()[0])
    assert not np.array_equal(a, sample_video_scene(np.random.default_rng(12)).render_video()[0])

def test_masks_are_exactly_the_painted_pixels_and_never_overlap():
    for seed in range(40):
        scene = sample_video_scene(np.random.default_rng(seed))
        video, masks = scene.render_video()
        assert not (masks.sum(0) > 1).any()
        for i, obj in enumerate(scene.objects):
            colour = (np.array(COLOURS[obj.colour]) + obj.tint).clip(0, 255)
            assert (video[masks[i]] == colour).all()

def test_occlusion_hides_the_back_object():
    scene = Scene([WorldObject("blue", "square", "large", 30, 30), WorldObject("red", "circle", "small", 30, 30)])
    _, vis = scene.render()
    full = shape_mask(scene.objects[0], 30, 30, 64)
    assert vis[0].sum() == full.sum() - vis[1].sum() and vis[1].sum() > 0

def test_train_never_shows_held_out_and_test_does():
    train = [o for s in range(150) for o in sample_scene(np.random.default_rng(s), split="train").objects]
    test = [o for s in range(150) for o in sample_scene(np.random.default_rng(s), split="test").objects]
    assert not any((o.colour, o.shape) in HELD_OUT for o in train)
    assert 0.3 < np.mean([(o.colour, o.shape) in HELD_OUT for o in test]) < 0.7
    with pytest.raises(VitronError, match="only in the test split"): sample_attributes(np.random.default_rng(0), "val", unseen=True)

def test_bounce_appear_disappear():
    s = Scene([set_motion(WorldObject("red", "circle", "small", 54, 32), "right", "quickly")], n_frames=8)
    xs = [x for x, _ in s.path(0)]
    assert bounces(s, 0) and max(xs) <= 58 and xs[-1] < xs[1]
    o = WorldObject("green", "cross", "medium", 20, 20, appear=2, disappear=5)
    s2 = Scene([WorldObject("blue", "square", "small", 50, 50), o], n_frames=8)
    _, masks = s2.render_video()
    assert visible_spans(s2, masks)[1] == (2, 5)

@pytest.mark.parametrize("direction", ["left", "right", "up", "down"])
def test_generation_targets_move_as_asked_without_bouncing(direction):
    for seed in range(10):
        t = target_scene("green", "cross", "large", "centre", np.random.default_rng(seed), direction=direction, speed="quickly")
        assert not bounces(t, 0)
        (x0, y0), (x1, y1) = t.path(0)[0], t.path(0)[-1]
        dx, dy = x1 - x0, y1 - y0
        assert {"left": dx < -20, "right": dx > 20, "up": dy < -20, "down": dy > 20}[direction]

def test_positions_and_boxes():
    for p in ["top left", "top right", "centre", "bottom left", "bottom right"]:
        o = target_scene("red", "square", "small", p, np.random.default_rng(0)).objects[0]
        assert position_name(o.x, o.y, 64) == p
    m = np.zeros((64, 64), bool); m[10:20, 5:9] = True
    assert mask_box(m) == (5 / 64, 10 / 64, 9 / 64, 20 / 64) and mask_box(np.zeros((4, 4), bool)) is None

def test_other_image_sizes():
    cfg = VitronConfig.from_preset("small")
    img, masks = sample_scene(np.random.default_rng(0), cfg).render()
    assert img.shape == (cfg.image_size, cfg.image_size, 3) and masks.shape[1:] == (cfg.image_size, cfg.image_size)
