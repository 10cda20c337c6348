"`vitron train` (the whole recipe): killed mid-stage it resumes from its last checkpoint and ends where an uninterrupted run ends; seeded runs repeat."
import json, os, signal, subprocess, sys, time
from pathlib import Path
import pytest
from safetensors.torch import load_file
from vitron_nb.cli import checkpoint_step
from test_cli import run                 # `vitron ARGV` in this process: (exit code, stdout, stderr)

STEPS, EVERY = 8, 2                      # per stage; a checkpoint every 2 steps, so a kill after the first one loses at most 2
RECIPE = ["train", "--only", "all", "--steps-per-stage", str(STEPS), "--batch-size", "2", "--checkpoint-every", str(EVERY)]

def start(argv, log: Path) -> subprocess.Popen:
    "`vitron ARGV` in a child process (one thread), its output to log.out and log.err."
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    code = "import sys, torch; torch.set_num_threads(1); from vitron_nb.cli import main; sys.exit(main())"
    return subprocess.Popen([sys.executable, "-c", code, *argv], env=env, stdout=open(log.with_suffix(".out"), "w"),
                            stderr=open(log.with_suffix(".err"), "w"))

def stage_tensors(folder: Path, stage: str) -> dict:
    "The model tensors of a stage checkpoint (the optimizer's state left out)."
    return {k: v for k, v in load_file(str(folder / f"stage{stage}.safetensors")).items() if k.startswith("model.")}

def assert_same_tensors(a: dict, b: dict):
    import torch
    assert a.keys() == b.keys() and len(a) > 10
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"

def test_a_killed_run_resumes_from_its_last_checkpoint(tmp_path):
    out = tmp_path / "run"
    argv = [*RECIPE, "--seed", "5", "--out", str(out)]
    first = start(argv, tmp_path / "first")
    checkpoint, give_up = out / "stage2.safetensors", time.monotonic() + 300     # a bound against hanging, not a timing check
    while not checkpoint.exists() and first.poll() is None and time.monotonic() < give_up: time.sleep(0.01)
    first.send_signal(signal.SIGKILL); first.wait()
    assert first.returncode == -signal.SIGKILL, (tmp_path / "first.err").read_text()[-2000:]
    killed_at = checkpoint_step(checkpoint)
    assert 0 < killed_at < STEPS, f"stage 2 was killed at step {killed_at} of {STEPS}: not mid-stage"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "running" and list(manifest["stages"]) == ["1.1"]       # stage 1.1 finished, stage 2 did not

    second = start(argv, tmp_path / "second")                                          # the same command again
    assert second.wait() == 0, (tmp_path / "second.err").read_text()[-2000:]
    printed = (tmp_path / "second.out").read_text()
    assert f"already complete ({STEPS} of {STEPS} steps): loaded stage1.1.safetensors" in printed
    assert f"resumed from step {killed_at} of {STEPS}" in printed and f"stage 2: resumed, resumed_from {killed_at}," in printed
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "done" and len(manifest["attempts"]) == 2 and manifest["seed"] == 5
    assert manifest["stages"]["1.1"]["status"] == "complete, loaded on resume" and manifest["stages"]["1.1"]["resumed_from"] == 0
    assert manifest["stages"]["2"]["resumed_from"] == killed_at and manifest["stages"]["2"]["steps"] == STEPS
    assert checkpoint_step(checkpoint) == STEPS and (out / "model" / "vitron.safetensors").is_file()
    assert not list(out.rglob("*.tmp")), "a temporary file of the killed run was left behind"

    code, _, err = run(*argv[:-1], str(tmp_path / "whole"))                            # the same run, never interrupted
    assert code == 0, err
    assert_same_tensors(stage_tensors(out, "2"), stage_tensors(tmp_path / "whole", "2"))

def test_seeded_runs_repeat_and_another_seed_differs(tmp_path):
    argv = ["train", "--steps-per-stage", "3", "--batch-size", "2", "--checkpoint-every", "3"]
    manifests = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        code, _, err = run(*argv, "--seed", str(seed), "--out", str(tmp_path / name))
        assert code == 0, err
        manifests[name] = json.loads((tmp_path / name / "manifest.json").read_text())
    from vitron_nb.model import STAGES
    losses = {name: [m["stages"][s]["final_loss"] for s in STAGES] for name, m in manifests.items()}
    assert losses["a"] == losses["b"] and losses["a"] != losses["c"], losses
    for stage in STAGES: assert_same_tensors(stage_tensors(tmp_path / "a", stage), stage_tensors(tmp_path / "b", stage))
    assert manifests["a"]["settings"]["steps"] == {stage: 3 for stage in STAGES} and manifests["a"]["specialists"]["used"] == "committed"
    assert len(manifests["a"]["specialists"]["segmenter"]["sha256"]) == 64

def test_retrained_specialists_come_first_and_are_recorded(tmp_path):
    out = tmp_path / "run"
    code, printed, err = run("train", "--specialists", "train", "--steps-per-stage", "1", "--batch-size", "2", "--out", str(out))
    assert code == 0, err
    from vitron_nb.model import STAGES
    names, total = ["segmenter", "generator", *STAGES], len(STAGES) + 2
    assert [line.split(":")[0] for line in printed.splitlines() if line.startswith("[")] == [
        f"[{i}/{total}] " + ("specialist " if name in ("segmenter", "generator") else "alignment stage ") + name for i, name in enumerate(names, 1)]
    assert names[2:] == ["1.1", "2", "1.2"]                                     # stage 1.2 runs after stage 2 (14_model says why)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["specialists"]["used"] == "trained in this run" and list(manifest["stages"]) == names
    for name in ("segmenter", "generator"):
        assert checkpoint_step(out / name / "checkpoint.safetensors") == 1 and manifest["stages"][name]["steps"] == 1

def test_the_recipe_refuses_bad_options_and_other_folders_writing_nothing(tmp_path):
    code, _, err = run("train", "--steps-per-stage", "0", "--out", str(tmp_path / "a"))
    assert code == 2 and "--steps-per-stage must be at least 1" in err and not (tmp_path / "a").exists()
    code, _, err = run("train", "--steps", "5", "--out", str(tmp_path / "a"))
    assert code == 2 and "give --steps-per-stage" in err and not (tmp_path / "a").exists()
    code, _, err = run("train", "--only", "clip", "--checkpoint-every", "3")
    assert code == 2 and "belong to the whole recipe (--only all)" in err
    (tmp_path / "other").mkdir(); (tmp_path / "other" / "notes.txt").write_text("mine")
    code, _, err = run("train", "--steps-per-stage", "1", "--out", str(tmp_path / "other"))
    assert code == 2 and "holds no manifest.json" in err and os.listdir(tmp_path / "other") == ["notes.txt"]
    (tmp_path / "bad").mkdir(); (tmp_path / "bad" / "manifest.json").write_text("{oops")
    code, _, err = run("train", "--steps-per-stage", "1", "--out", str(tmp_path / "bad"))
    assert code == 2 and "is not valid JSON" in err
