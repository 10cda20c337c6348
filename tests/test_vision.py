"The vision encoder: patch features and both video routes, the committed weights, refused inputs, resumable training."
import json
import numpy as np
import pytest
import torch
from vitron_nb.core import VitronConfig, VitronError, CheckpointError, load_tensors
from vitron_nb.world import COLOURS, HELD_OUT, WorldObject, Scene, sample_scene, sample_video_scene, canonical
from vitron_nb.vision import (CLIP_PATH, IMAGE_MEAN, IMAGE_STD, load_clip, freeze, image_patch_features, video_features,
                              video_token_count, n_patches, pixel_values, tokenize_captions, scene_caption, clip_pairs,
                              zero_shot, ATTRIBUTE_PROMPTS, train_clip, build_clip, save_clip)


@pytest.fixture(scope="module")
def clip(): return freeze(load_clip(device="cpu"))

@pytest.fixture(scope="module")
def video(): return sample_video_scene(np.random.default_rng(3)).render_video()[0]

def test_patch_feature_shapes(clip):
    images = np.stack([sample_scene(np.random.default_rng(s)).render()[0] for s in range(3)])
    assert image_patch_features(clip, images).shape == (3, 64, 128)
    single = image_patch_features(clip, images[1])
    assert single.shape == (1, 64, 128)
    torch.testing.assert_close(single[0], image_patch_features(clip, images)[1], atol=1e-4, rtol=1e-4)
    assert image_patch_features(clip, np.repeat(np.repeat(images, 2, 1), 2, 2)).shape == (3, 64, 128)   # 128 px resized
    # penultimate layer, CLS dropped: the hidden state of layer L-1 at positions 1..64
    hidden = clip.vision_model(pixel_values=pixel_values(images, 64), output_hidden_states=True).hidden_states
    assert len(hidden) == 5
    torch.testing.assert_close(image_patch_features(clip, images), hidden[3][:, 1:])

def test_video_routes(clip, video):
    config = VitronConfig()
    mean, every = video_features(clip, video, "mean"), video_features(clip, video, "none")
    assert mean.shape == (1, 64, 128) and every.shape == (1, 8 * 64, 128)
    assert video_token_count(config, "mean") == 64 and video_token_count(config, "none") == 512
    assert video_token_count(VitronConfig.from_preset("paper"), "none") == 8 * 576 and n_patches(VitronConfig.from_preset("paper")) == 576
    torch.testing.assert_close(mean[0], every[0].view(8, 64, 128).mean(0), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(every[0, 3 * 64:4 * 64], image_patch_features(clip, video[3])[0], atol=1e-4, rtol=1e-4)
    batch = np.stack([video, video[::-1]])
    assert video_features(clip, batch, "mean").shape == (2, 64, 128) and video_features(clip, batch, "none").shape == (2, 512, 128)
    torch.testing.assert_close(video_features(clip, batch, "mean")[0], video_features(clip, batch, "mean")[1], atol=1e-4, rtol=1e-4)
    default = (1, 64, 128) if clip.vitron_config.video_pooling == "mean" else (1, 512, 128)
    assert video_features(clip, video).shape == default                # the config's route (tiny: every frame kept)

def test_committed_weights_zero_shot_colour(clip):
    tensors, metadata = load_tensors(CLIP_PATH, "clip")
    assert all(v.dtype == torch.float16 for v in tensors.values() if v.is_floating_point())
    record = json.loads(CLIP_PATH.with_suffix(".json").read_text())
    assert record["seed"] == 0 and record["steps"] > 0 and record["metrics"]["split"] == "test"
    assert CLIP_PATH.stat().st_size < 5e6
    assert not any(p.requires_grad for p in clip.parameters()) and not clip.training
    scenes = [sample_scene(np.random.default_rng([4242, i]), split="test", n_objects=1) for i in range(60)]
    images = np.stack([s.render()[0] for s in scenes])
    truth = [s.objects[0].colour for s in scenes]
    unseen = [(s.objects[0].colour, s.objects[0].shape) in HELD_OUT for s in scenes]
    with torch.no_grad(): predicted = zero_shot(clip, images, ATTRIBUTE_PROMPTS["colour"])
    accuracy = np.mean([p == t for p, t in zip(predicted, truth)])
    assert sum(unseen) >= 15 and accuracy >= 0.9, (accuracy, sum(unseen))

def test_bad_inputs_are_refused(clip, video):
    image = sample_scene(np.random.default_rng(0)).render()[0]
    for bad, message in [(image.astype(np.float32) / 255, "must be uint8"), (image[..., 0], "(H, W, 3) or (B, H, W, 3)"),
                         (np.zeros((64, 64, 4), np.uint8), "RGB channels last"), (np.zeros((0, 64, 64, 3), np.uint8), "shaped"),
                         (image.tolist(), "numpy array")]:
        with pytest.raises(VitronError, match=message.replace("(", r"\(").replace(")", r"\)")): image_patch_features(clip, bad)
    with pytest.raises(VitronError, match="must be uint8"): video_features(clip, video.astype(np.int64))
    with pytest.raises(VitronError, match=r"\(T, H, W, 3\)"): video_features(clip, video[0])
    with pytest.raises(VitronError, match="'mean' or 'none'"): video_features(clip, video, "max")
    with pytest.raises(VitronError, match="list of strings"): tokenize_captions("a red circle")

def test_load_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no CLIP weights"): load_clip(tmp_path / "none.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="truncated or corrupt"): load_clip(tmp_path / "bad.safetensors")
    small = VitronConfig(d_vision=32, vision_layers=1, vision_heads=2, d_embed=16)
    path = save_clip(build_clip(small), tmp_path / "small.safetensors", {"seed": 0})
    assert load_clip(path).config.vision_config.hidden_size == 32
    with pytest.raises(CheckpointError, match="does not match"): load_clip(path, VitronConfig())

def test_pixels_and_captions_by_hand():
    image = np.zeros((64, 64, 3), np.uint8); image[..., 0] = 255
    pixels = pixel_values(image, 64)
    assert torch.allclose(pixels[0, 0], torch.tensor((1 - IMAGE_MEAN[0]) / IMAGE_STD[0]))
    assert torch.allclose(pixels[0, 2], torch.tensor(-IMAGE_MEAN[2] / IMAGE_STD[2]))
    batch = tokenize_captions(["a red circle", "a small blue square at the top left"])
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert ids[0, 0] == 0 and ids[0, mask[0].sum() - 1] == 1 and (ids[0, mask[0].sum():] == 2).all()   # <s> ... </s> <pad>
    assert mask[1].all() and ids[1, -1] == 1

def test_scene_caption_names_every_object():
    for seed in range(20):
        objects = [WorldObject(c, "square", "large", 10 + 20 * i, 32) for i, c in enumerate(["red", "blue", "red"])]
        caption = scene_caption(Scene(objects), np.random.default_rng(seed))
        colours = sorted(w for w in (canonical(x.strip(",")) for x in caption.split()) if w in COLOURS)
        assert colours == ["blue", "red", "red"], caption
    _, captions, scenes = clip_pairs(np.random.default_rng(1), n=40, palette=["green"])
    assert all(o.colour == "green" and (o.colour, o.shape) not in HELD_OUT for s in scenes for o in s.objects)

def test_text_pooling_is_at_end_of_text():
    model = build_clip(VitronConfig(d_vision=32, vision_layers=1, vision_heads=2, d_embed=16)).eval()
    batch = tokenize_captions(["a red circle", "a large crimson disc at the top left"])
    with torch.no_grad(): out = model.text_model(**batch)
    ends = batch["attention_mask"].sum(1) - 1
    torch.testing.assert_close(out.pooler_output, out.last_hidden_state[torch.arange(2), ends])
    assert not torch.allclose(out.pooler_output[0], out.pooler_output[1])

def test_train_and_resume(tmp_path):
    small = VitronConfig(d_vision=32, vision_layers=1, vision_heads=2, d_embed=16)
    straight, record = train_clip(small, tmp_path / "a", steps=2, batch_size=4, progress=False)
    _, first = train_clip(small, tmp_path / "b", steps=2, batch_size=4, stop_at=1, progress=False)
    resumed, second = train_clip(small, tmp_path / "b", steps=2, batch_size=4, progress=False)
    assert (record["steps"], first["steps"], second["resumed_from"], second["steps"]) == (2, 1, 1, 2)
    assert second["losses"][0] == first["losses"][0] and len(second["losses"]) == 2
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()): torch.testing.assert_close(a, b)
    assert (tmp_path / "b" / "checkpoint.safetensors").is_file()
    with pytest.raises(CheckpointError, match="another config"): train_clip(VitronConfig(), tmp_path / "b", steps=3, batch_size=4, progress=False)

def test_retune_keeps_the_text_tower(tmp_path):
    from vitron_nb.vision import load_clip, retune_vision
    base = load_clip().state_dict()
    tuned, record = retune_vision(load_clip(), out_dir=tmp_path, steps=1, batch_size=4, progress=False, precision="fp32")
    after = tuned.state_dict()
    assert all(torch.equal(base[k], after[k]) for k in base if k.startswith(("text_model.", "text_projection.")))
    assert not torch.equal(base["attribute_head.weight"], after["attribute_head.weight"])
    assert record["steps"] == 1 and (tmp_path / "checkpoint.safetensors").is_file()
    with pytest.raises(VitronError, match="precision"): retune_vision(load_clip(), out_dir=tmp_path, precision="fp16")
