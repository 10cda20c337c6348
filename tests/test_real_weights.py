"Real checkpoint formats: tiny stand-ins saved as the real ones are load back identically; every refusal is named; nothing runs, nothing is written."
import io, json, shutil
from pathlib import Path
import numpy as np
import pytest
import torch
from safetensors.torch import save_file, load_file
from vitron_nb.core import VitronConfig, VitronError, CheckpointError
from vitron_nb.real_weights import (write_stand_in, load_hf_clip, load_hf_llm, load_sam_weights, load_diffusers_unet, part_sizes,
                                    paper_sizes_table, _official_sam, _meta_shapes)

TINY, SMALL = VitronConfig.from_preset("tiny"), VitronConfig.from_preset("small")
PICTURES = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
TOKENS = torch.tensor([[0, 5, 17, 300, 901, 42, 7]])


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    "The four stand-ins at the tiny preset, as the real checkpoints are saved: (folder, {kind: (path, model)})."
    root = tmp_path_factory.mktemp("real")
    names = {"clip": "clip", "llm": "llm", "sam": "sam_vit_tiny.pth", "unet": "unet"}
    return root, {kind: (root / name, write_stand_in(kind, root / name, TINY)) for kind, name in names.items()}

def listing(folder: Path) -> dict:
    "Every file under `folder` with its size, modification time and content hash."
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns, hash(p.read_bytes()))
            for p in sorted(folder.rglob("*")) if p.is_file()}

def refused(load, path: Path, config=TINY) -> str:
    "The CheckpointError message of `load(path, config)`, after checking the folder holding `path` is unchanged."
    folder = path if path.is_dir() else path.parent
    before = listing(folder)
    with pytest.raises(CheckpointError) as info: load(path, config, device="cpu")
    assert listing(folder) == before, "a refused load wrote into the user's folder"
    return str(info.value)

def fresh_copy(root: Path, name: str, new: str) -> Path:
    "A copy of a saved stand-in (folder or file) to break, in its own folder."
    target = root / "broken" / new
    if target.exists(): shutil.rmtree(target) if target.is_dir() else target.unlink()
    target.parent.mkdir(exist_ok=True)
    (shutil.copytree if (root / name).is_dir() else shutil.copy)(root / name, target)
    return target

class RunsCode:
    "Unpickled by the full unpickler this object would call io.open and create `marker`."
    def __init__(self, marker): self.marker = str(marker)
    def __reduce__(self): return (io.open, (self.marker, "w"))


# --- round trips: identical outputs ------------------------------------------------------------------------------------

def test_clip_round_trip(saved):
    from vitron_nb.vision import image_patch_features, embed_images
    root, parts = saved
    path, original = parts["clip"]
    before = listing(path)
    loaded = load_hf_clip(path, TINY, device="cpu")
    assert listing(path) == before
    assert type(loaded).__name__ == "CLIPModel" and loaded.vitron_config == TINY and not loaded.training
    with torch.no_grad():
        assert torch.equal(image_patch_features(original, PICTURES), image_patch_features(loaded, PICTURES))
        assert torch.equal(embed_images(original, PICTURES), embed_images(loaded, PICTURES))
        other = write_stand_in("clip", root / "clip-seed1", TINY, seed=1)
        assert not torch.equal(image_patch_features(other, PICTURES), image_patch_features(loaded, PICTURES))
    assert loaded.config.text_config.vocab_size == 512        # the file's own text tower, not the project's


def test_llm_round_trip_single_file_and_shards(saved):
    root, parts = saved
    path, original = parts["llm"]
    loaded = load_hf_llm(path, TINY, device="cpu")
    with torch.no_grad(): expected = original(TOKENS).logits
    with torch.no_grad(): assert torch.equal(loaded(TOKENS).logits, expected)
    assert loaded.vitron_config == TINY and loaded.config._attn_implementation == "sdpa"
    sharded = root / "llm-sharded"
    original.save_pretrained(sharded, max_shard_size="4MB")
    shards = sorted(p.name for p in sharded.glob("*.safetensors"))
    assert len(shards) > 1 and (sharded / "model.safetensors.index.json").is_file()
    with torch.no_grad(): assert torch.equal(load_hf_llm(sharded, TINY, device="cpu")(TOKENS).logits, expected)
    (sharded / shards[-1]).unlink()
    assert shards[-1] in refused(load_hf_llm, sharded)


def test_sam_round_trip_pth_and_safetensors(saved):
    from vitron_nb.segmenter import segment, _embed
    root, parts = saved
    path, original = parts["sam"]
    converted = root / "sam_vit_tiny.safetensors"
    save_file({k: v.contiguous() for k, v in original.state_dict().items()}, str(converted))
    boxes = [(0.2, 0.2, 0.7, 0.7)] * 2
    with torch.no_grad(): embedding = _embed(original, PICTURES)
    masks = segment(original, PICTURES, boxes=boxes)
    for file in (path, converted):
        loaded = load_sam_weights(file, TINY, device="cpu")
        assert type(loaded).__name__ == "Sam" and not any(p.requires_grad for p in loaded.parameters())
        with torch.no_grad(): assert torch.equal(_embed(loaded, PICTURES), embedding)
        assert np.array_equal(segment(loaded, PICTURES, boxes=boxes), masks)
    other = write_stand_in("sam", root / "sam-seed1.pth", TINY, seed=1)
    with torch.no_grad(): assert not torch.equal(_embed(other, PICTURES), embedding)


def test_unet_round_trip_alone_and_in_a_generator(saved):
    from vitron_nb.generator import build_generator, condition_ids
    root, parts = saved
    path, original = parts["unet"]
    loaded = load_diffusers_unet(path, TINY, device="cpu")
    assert type(loaded).__name__ == "UNet2DModel" and not any(p.requires_grad for p in loaded.parameters())
    noisy, timesteps = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)), torch.tensor([3, 800])
    labels = torch.randn(2, 128, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(original(noisy, timesteps, class_labels=labels).sample, loaded(noisy, timesteps, class_labels=labels).sample)
        generator = build_generator(TINY).eval()
        ids = condition_ids([dict(colour="red", shape="circle", size="large", position="centre")] * 2)
        generator.unet = original; first = generator(noisy, timesteps, ids)
        generator.unet = loaded; second = generator(noisy, timesteps, ids)
    assert torch.equal(first, second)


# --- refusals, each named, nothing written -----------------------------------------------------------------------------

def test_another_preset_names_the_field_and_both_values(saved):
    root, parts = saved
    clip = refused(load_hf_clip, parts["clip"][0], SMALL)
    assert "vision_config.hidden_size = 128 in the file but d_vision = 256 in the config" in clip
    assert "vision_config.patch_size = 8 in the file but patch_size = 16" in clip and "It fits preset 'tiny'" in clip
    llm = refused(load_hf_llm, parts["llm"][0], SMALL)
    assert "hidden_size = 256 in the file but d_llm = 512" in llm and "intermediate_size = 688 in the file but d_llm_ffn = 1376" in llm
    assert "vocab_size = 1024 in the file but vocab_size = 2048" in llm
    sam = refused(load_sam_weights, parts["sam"][0], SMALL)
    assert "'image_encoder.pos_embed' is (1, 16, 16, 64) in the file but (1, 32, 32, 128) in the model" in sam and "fits preset 'tiny'" in sam
    unet = refused(load_diffusers_unet, parts["unet"][0], SMALL)
    assert "sample_size = 32 in the file but 64 for preset 'small'" in unet
    other = refused(load_hf_llm, parts["llm"][0], VitronConfig.from_preset("tiny", d_llm_ffn=700))
    assert "intermediate_size = 688 in the file but d_llm_ffn = 700" in other


def test_pickle_only_folders_are_refused_without_unpickling(saved, tmp_path):
    root, parts = saved
    marker = tmp_path / "ran.txt"
    for load, name, weights, pickled in ((load_hf_llm, "llm", "model.safetensors", "pytorch_model.bin"),
                                         (load_hf_clip, "clip", "model.safetensors", "pytorch_model.bin"),
                                         (load_diffusers_unet, "unet", "diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")):
        folder = fresh_copy(root, name, f"{name}-pickled")
        (folder / weights).unlink()
        torch.save({"weight": torch.zeros(2), "payload": RunsCode(marker)}, folder / pickled)
        message = refused(load, folder)
        assert pickled in message and "never unpickles" in message and "save_pretrained(new_folder)" in message
        assert not marker.exists()


def test_truncated_files_are_named(saved):
    root, parts = saved
    for load, name, file in ((load_hf_clip, "clip", "model.safetensors"), (load_hf_llm, "llm", "model.safetensors"),
                             (load_diffusers_unet, "unet", "diffusion_pytorch_model.safetensors")):
        folder = fresh_copy(root, name, f"{name}-truncated")
        data = (folder / file).read_bytes(); (folder / file).write_bytes(data[: len(data) - 100])
        message = refused(load, folder)
        assert str(folder / file) in message and "truncated" in message
    pth = fresh_copy(root, "sam_vit_tiny.pth", "sam-truncated.pth")
    pth.write_bytes(pth.read_bytes()[:5000])
    assert "not a readable torch.save file (truncated or corrupt?)" in refused(load_sam_weights, pth)
    config = fresh_copy(root, "llm", "llm-config-cut")
    (config / "config.json").write_text((config / "config.json").read_text()[:40])
    assert "config.json is not readable JSON" in refused(load_hf_llm, config)


def test_wrong_keys_are_named(saved):
    root, parts = saved
    state = dict(parts["sam"][1].state_dict()); state["image_encoder.neck.0.weights"] = state.pop("image_encoder.neck.0.weight")
    renamed = root / "broken" / "sam-renamed.pth"; renamed.parent.mkdir(exist_ok=True)
    torch.save(state, renamed)
    message = refused(load_sam_weights, renamed)
    assert "missing ['image_encoder.neck.0.weight']" in message and "unexpected ['image_encoder.neck.0.weights']" in message
    folder = fresh_copy(root, "llm", "llm-renamed")
    tensors = load_file(str(folder / "model.safetensors"))
    tensors["model.norm.weights"] = tensors.pop("model.norm.weight")
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    message = refused(load_hf_llm, folder)
    assert "missing ['model.norm.weight']" in message and "unexpected ['model.norm.weights']" in message


def test_pth_with_an_object_is_refused_and_never_run(saved, tmp_path):
    root, parts = saved
    marker = tmp_path / "ran.txt"
    evil = tmp_path / "checkpoint.pth"
    torch.save({**parts["sam"][1].state_dict(), "payload": RunsCode(marker)}, evil)
    message = refused(load_sam_weights, evil)
    assert "nothing in it was run" in message and "io.open" in message and not marker.exists()
    torch.save(RunsCode(marker), evil)
    assert "nothing in it was run" in refused(load_sam_weights, evil) and not marker.exists()
    torch.save({"model": dict(parts["sam"][1].state_dict()), "epoch": 3}, evil)       # allowed by the unpickler, but not a state dict
    assert "holds ['dict', 'int'], not a state dict of tensors" in refused(load_sam_weights, evil)


def test_other_models_and_formats_are_refused(saved):
    root, parts = saved
    assert "model_type 'llama', not 'clip'" in refused(load_hf_clip, parts["llm"][0])
    empty = root / "empty"; empty.mkdir(exist_ok=True)
    assert "has no config.json" in refused(load_hf_llm, empty)
    sd = fresh_copy(root, "unet", "unet-sd")
    info = json.loads((sd / "config.json").read_text()); (sd / "config.json").write_text(json.dumps({**info, "_class_name": "UNet2DConditionModel"}))
    assert "UNet2DConditionModel" in refused(load_diffusers_unet, sd)
    wrong_suffix = fresh_copy(root, "sam_vit_tiny.pth", "sam.ckpt")
    assert "'.ckpt'" in refused(load_sam_weights, wrong_suffix)
    with pytest.raises(CheckpointError, match="no SAM checkpoint"): load_sam_weights(root / "missing.pth", TINY)
    with pytest.raises(VitronError, match="unknown kind"): write_stand_in("vae", root / "vae", TINY)
    with pytest.raises(VitronError, match="already exists"): write_stand_in("llm", parts["llm"][0], TINY)


def test_official_sam_is_recognised_by_its_shapes(saved):
    from segment_anything import sam_model_registry
    assert _official_sam(_meta_shapes(sam_model_registry["vit_b"])) == "vit_b"
    assert _official_sam(_meta_shapes(sam_model_registry["vit_h"])) == "vit_h"
    assert _official_sam({k: tuple(v.shape) for k, v in saved[1]["sam"][1].state_dict().items()}) is None


# --- the paper preset's sizes ------------------------------------------------------------------------------------------

def test_paper_sizes():
    rows = {r["part"]: r for r in part_sizes()}
    assert rows["CLIP vision tower"]["parameters"] == rows["CLIP vision tower"]["published_parameters"] == 303_507_456
    assert rows["CLIP vision tower"]["same_shapes"] is True
    assert rows["CLIP, whole model"]["published_parameters"] == 427_944_193 and rows["CLIP, whole model"]["parameters"] is None
    assert rows["LLM"]["parameters"] == rows["LLM"]["published_parameters"] == 6_738_415_616 and rows["LLM"]["same_shapes"]
    assert rows["segmenter"]["published_parameters"] == 641_090_608 and rows["segmenter"]["same_shapes"] is False
    assert rows["generator U-Net"]["published_parameters"] == 859_520_964 and rows["generator U-Net"]["same_shapes"] is False
    assert all(r["preset"] == "paper" for r in rows.values())
    table = paper_sizes_table()
    assert "| LLM | `load_hf_llm` | 6,738,415,616 | Vicuna-7B v1.5 | 6,738,415,616 | yes |" in table
    tiny_rows = {r["part"]: r for r in part_sizes(TINY)}
    assert tiny_rows["CLIP vision tower"]["same_shapes"] is False and tiny_rows["LLM"]["same_shapes"] is False
