"Alignment training through accelerate: one process trains as a plain loop does, and two processes really split each step's batch."
import hashlib, json, os, socket, subprocess, sys, time
from pathlib import Path
import pytest
from vitron_nb.core import VitronConfig, VitronError, set_seed, load_checkpoint
from vitron_nb.model import build_model, train_stage, process_examples, stage_examples

def plain_losses(steps: int = 3, batch_size: int = 4) -> list[float]:
    "Per-step losses of the same seeded stage-1.1 run written as a plain PyTorch loop (no accelerate)."
    import torch
    from vitron_nb.model import prepare_stage, batch_loss, stage_lr, STAGES
    set_seed(0)
    model = build_model(device="cpu")
    params = prepare_stage(model, "1.1")
    optimizer = torch.optim.AdamW(params, lr=STAGES["1.1"]["lr"], weight_decay=0.0)
    set_seed(0); model.train(); model.clip.eval()
    out = []
    for step in range(steps):
        for group in optimizer.param_groups: group["lr"] = stage_lr("1.1", step, steps)
        loss = batch_loss(model, stage_examples("1.1", step, batch_size, model.config))
        optimizer.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(params, 1.0); optimizer.step()
        out.append(loss.item())
    return out

def digest(tensors: dict) -> str:
    "sha256 over the tensors' names and bytes, in name order."
    h = hashlib.sha256()
    for name in sorted(tensors):
        h.update(name.encode()); h.update(tensors[name].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()

def test_process_examples_splits_the_batch_into_contiguous_shares():
    batch = list(range(8))
    assert [process_examples(batch, r, 2) for r in range(2)] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert process_examples(batch, 0, 1) == batch
    with pytest.raises(VitronError, match="multiple of 3"): process_examples(batch, 0, 3)
    with pytest.raises(VitronError, match="index"): process_examples(batch, 2, 2)

def test_one_process_trains_exactly_as_before(tmp_path):
    set_seed(0)
    model, losses = build_model(device="cpu"), []
    modes = []
    def hook(module, inputs, output):
        losses.append(output.loss.item()); modes.append(module.training)
    hook = model.llm.register_forward_hook(hook)
    called = []                         # on_step sees each step's number and loss, and leaves the model training
    record = train_stage(model, "1.1", steps=3, batch_size=4, out_dir=tmp_path, progress=False, precision="fp32",
                         on_step=lambda done, loss: (called.append((done, loss)), model.eval()))
    hook.remove()
    assert record["processes"] == 1 and record["steps"] == 3
    assert [d for d, _ in called] == [1, 2, 3] and [l for _, l in called] == pytest.approx(losses, abs=1e-6) and all(modes)
    expected = plain_losses()
    assert losses == pytest.approx(expected, abs=1e-5) and losses[-1] < losses[0]
    assert record["final_loss"] == pytest.approx(sum(expected) / 3, abs=1e-5)

PRELUDE = r'''
import hashlib, json, os, sys
import torch
torch.set_num_threads(1)
from accelerate import Accelerator

out = sys.argv[1]
accelerator = Accelerator(cpu=True)
rank, world = accelerator.process_index, accelerator.num_processes

def digest(tensors):
    h = hashlib.sha256()
    for name in sorted(tensors):
        h.update(name.encode()); h.update(tensors[name].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
'''   # what every two-process child script starts with: one CPU thread, accelerate on gloo, its rank, and `digest`

CHILD = PRELUDE + r'''
import vitron_nb.model as vm
from vitron_nb.core import set_seed

seen, writes = [], []
encode, save = vm.encode_batch, vm.save_checkpoint
vm.encode_batch = lambda model, examples: (seen.append([ex.id for ex in examples]), encode(model, examples))[1]
vm.save_checkpoint = lambda *args, **kwargs: (writes.append(str(args[0])), save(*args, **kwargs))[1]
set_seed(100 + rank)                         # different initial projectors per rank: DDP must bring them in line
model = vm.build_model(device="cpu")
before = digest(vm.trained_state(model))
result = vm.train_stage(model, "1.1", steps=2, batch_size=4, out_dir=out, progress=False, cpu=True)
json.dump(dict(rank=rank, world=world, pid=os.getpid(), ids=seen, writes=writes, before=before,
               after=digest(vm.trained_state(model)), result=result), open(os.path.join(out, f"rank{rank}.json"), "w"))
'''

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]

def launch_two(script, *args, timeout: int = 180) -> subprocess.CompletedProcess:
    "Run `script` with `args` in two CPU processes (`accelerate launch --multi_gpu`, the form that really starts two); fail on an error."
    accelerate = Path(sys.executable).parent / "accelerate"
    command = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
               "--dynamo_backend", "no", "--main_process_port", str(free_port()), str(script), *map(str, args)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    t0 = time.time()
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, run.stderr[-3000:]
    print(f"accelerate launch, 2 processes, {Path(script).name}: {time.time() - t0:.1f} s")
    return run

def test_two_processes_split_each_batch_and_stay_in_sync(tmp_path):
    script, out = tmp_path / "train_two.py", tmp_path / "run"
    script.write_text(CHILD); out.mkdir()
    launch_two(script, out)
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    # two distinct processes, ranks 0 and 1 of 2
    assert [r["rank"] for r in ranks] == [0, 1] and all(r["world"] == 2 and r["result"]["processes"] == 2 for r in ranks)
    assert ranks[0]["pid"] != ranks[1]["pid"]
    # each step, each rank trained on its half of the step's global batch: disjoint, and together the whole batch
    config = VitronConfig()
    for step in range(2):
        batch = [ex.id for ex in stage_examples("1.1", step, 4, config, seed=0)]
        assert ranks[0]["ids"][step] == batch[:2] and ranks[1]["ids"][step] == batch[2:]
    # the checkpoint was written once, by rank 0, and loads
    path = out / "stage1.1.safetensors"
    assert ranks[0]["writes"] == [str(path)] and ranks[1]["writes"] == []
    tensors, meta = load_checkpoint(path, "vitron-stage1.1")
    assert meta["step"] == 2
    # the ranks started from different projectors and ended with identical trained tensors, equal to the checkpoint's
    assert ranks[0]["before"] != ranks[1]["before"]
    assert ranks[0]["after"] == ranks[1]["after"] == digest(tensors)
