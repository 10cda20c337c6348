"Config presets, seeds and checkpoints: what every later component relies on."
import json, os
import pytest, torch
from vitron_nb.core import (VitronConfig, PRESETS, VitronError, CheckpointError, pick_device, set_seed, save_module,
                            load_module, save_tensors, load_tensors, atomic_path, atomic_dir, write_json)

def test_presets_differ_only_where_declared_and_roundtrip():
    tiny, paper = VitronConfig.from_preset("tiny"), VitronConfig.from_preset("paper")
    assert (paper.d_llm, paper.image_size, paper.patch_size, paper.lora_r, paper.lora_alpha) == (4096, 336, 14, 128, 256)
    assert tiny.image_size == 64 and tiny.preset == "tiny"
    for name in PRESETS:
        cfg = VitronConfig.from_preset(name)
        assert VitronConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg

@pytest.mark.parametrize("kwargs,message", [({"d_lm": 3}, "unknown config field"), ({"image_size": 65}, "multiple of patch_size"),
                                            ({"projector": "mlp3"}, "projector"), ({"n_frames": 1}, "n_frames"),
                                            ({"d_llm": -4}, "non-negative")])
def test_bad_config_is_refused_with_the_field_named(kwargs, message):
    with pytest.raises(VitronError, match=message): VitronConfig.from_preset("tiny", **kwargs)

def test_unknown_preset():
    with pytest.raises(VitronError, match="unknown preset 'huge'"): VitronConfig.from_preset("huge")

def test_seed_and_device():
    set_seed(3); a = torch.rand(4); set_seed(3); assert torch.equal(a, torch.rand(4))
    assert pick_device().type in ("cpu", "cuda", "mps")
    assert pick_device("cpu").type == "cpu"

def test_checkpoint_roundtrip_and_refusals(tmp_path):
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    path = save_module(net, tmp_path / "m.safetensors", kind="probe", config=VitronConfig())
    other = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    meta = load_module(other, path, "probe")
    assert torch.equal(other[0].weight, net[0].weight) and json.loads(meta["config"])["preset"] == "tiny"
    with pytest.raises(CheckpointError, match="shape mismatch"): load_module(torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2)), path, "probe")
    with pytest.raises(CheckpointError, match="missing"): load_module(torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2), torch.nn.Linear(2, 2)), path, "probe")
    with pytest.raises(CheckpointError, match="not a 'llm'"): load_module(net, path, "llm")
    data = path.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"): load_module(net, tmp_path / "cut.safetensors", "probe")
    (tmp_path / "pickle.safetensors").write_bytes(b"\x80\x04\x95not a safetensors file")
    with pytest.raises(CheckpointError): load_tensors(tmp_path / "pickle.safetensors")
    with pytest.raises(CheckpointError, match="does not exist"): load_tensors(tmp_path / "none.safetensors")

def test_atomic_writes_leave_nothing_half_written(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "x.json") as tmp:
            tmp.write_text("{half"); raise RuntimeError("killed")
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "folder") as tmp:
            (tmp / "a.txt").write_text("a"); raise RuntimeError("killed")
    assert sorted(os.listdir(tmp_path)) == []
    write_json(tmp_path / "ok.json", {"a": 1})
    assert json.loads((tmp_path / "ok.json").read_text()) == {"a": 1}
    (tmp_path / "mine").mkdir(); (tmp_path / "mine" / "keep.txt").write_text("precious")
    with pytest.raises(VitronError, match="already exists"):
        with atomic_dir(tmp_path / "mine", marker="tasks.jsonl"): pass
    assert (tmp_path / "mine" / "keep.txt").read_text() == "precious"
