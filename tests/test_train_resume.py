"`vitron train` (the whole recipe): killed mid-stage it resumes from its last checkpoint and ends where an uninterrupted run ends; seeded runs repeat."
import json, os, signal, subprocess, sys, time
from pathlib import Path
import pytest
from safetensors.torch import load_file
from vitron_nb.cli import checkpoint_step, RECIPE_SPECIALISTS, SIGNAL_STAGES, SIGNAL_WEIGHTS, specialist_settings
from vitron_nb.core import file_sha256
from test_cli import run                 # `vitron ARGV` in this process: (exit code, stdout, stderr)

STEPS, EVERY = 8, 2                      # per stage; a checkpoint every 2 steps, so a kill after the first one loses at most 2
RECIPE = ["train", "--only", "all", "--steps-per-stage", str(STEPS), "--batch-size", "2", "--checkpoint-every", str(EVERY)]
ALIGNMENT = ["1.1", "2", "1.2"]          # model.STAGES, in order: stage 1.2 runs after stage 2 (14_model says why)

def start(argv, log: Path) -> subprocess.Popen:
    "`vitron ARGV` in a child process (one thread), its output to log.out and log.err."
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    code = "import sys, torch; torch.set_num_threads(1); from vitron_nb.cli import main; sys.exit(main())"
    return subprocess.Popen([sys.executable, "-c", code, *argv], env=env, stdout=open(log.with_suffix(".out"), "w"),
                            stderr=open(log.with_suffix(".err"), "w"))

def kill_after(argv, log: Path, checkpoint: Path) -> int:
    "Run `vitron ARGV`, SIGKILL it as soon as `checkpoint` is written, and return the step that checkpoint holds."
    child, give_up = start(argv, log), time.monotonic() + 300             # a bound against hanging, not a timing check
    while not checkpoint.exists() and child.poll() is None and time.monotonic() < give_up: time.sleep(0.01)
    child.send_signal(signal.SIGKILL); child.wait()
    assert child.returncode == -signal.SIGKILL, log.with_suffix(".err").read_text()[-2000:]
    return checkpoint_step(checkpoint)

def tensors(path: Path) -> dict:
    "The model tensors of a checkpoint (the optimizer's state left out)."
    return {k: v for k, v in load_file(str(path)).items() if k.startswith("model.")}

def stage_tensors(folder: Path, stage: str) -> dict:
    "The model tensors of a stage checkpoint: an alignment stage's, or a signal stage's."
    return tensors(folder / "signals" / f"stage{stage}" / "checkpoint.safetensors" if stage in SIGNAL_STAGES else folder / f"stage{stage}.safetensors")

def assert_same_tensors(a: dict, b: dict):
    import torch
    assert a.keys() == b.keys() and len(a) > 10
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"

def signal_rows(model):
    "The signal tokens' rows of the output embeddings of `model`'s LLM."
    from vitron_nb.signals import Signals, take_rows
    signals = Signals(model.config); take_rows(model, signals)
    return signals.output_rows

def assert_signals_trained_on_the_run(out: Path, manifest: dict, specialists: dict):
    "The signal stages trained against the run's own aligned model (and `specialists`' referring segmenter and generator): recorded, and seen in the weights."
    from vitron_nb.model import load_trained, VITRON_TINY
    from vitron_nb.signals import load_signals
    against = manifest["signals"]["trained_against"]
    assert against["llm"] == {"path": "model/vitron.safetensors", "sha256": file_sha256(out / "model" / "vitron.safetensors"),
                              "what": "this run's model after its alignment stages"}
    assert {name: against[name]["path"] for name in specialists} == specialists
    assert manifest["signals"]["weights"] == SIGNAL_WEIGHTS["3"] == "signals/signals.safetensors"
    for stage in SIGNAL_STAGES:
        assert checkpoint_step(out / manifest["stages"][stage]["checkpoint"]) == manifest["stages"][stage]["steps"]
    run_model = load_trained(out / "model")
    signals = load_signals(out / SIGNAL_WEIGHTS["3"], model=run_model)       # the run's signal side goes with the run's model
    assert manifest["stages"]["3"]["synergy_weight"] > 0 and manifest["stages"]["1.3"]["synergy_weight"] == 0
    # stage 1.3 started from the signal tokens' rows of the run's LLM (a few steps move them little), not the committed LLM's
    trained = tensors(out / "signals" / "stage1.3" / "checkpoint.safetensors")["model.output_rows"]
    near, far = (float((trained - signal_rows(m)).abs().max()) for m in (load_trained(out / "model"), load_trained(VITRON_TINY)))
    assert near < far / 10, (near, far)
    assert signals.vitron_config.to_dict() == run_model.config.to_dict()

def test_a_killed_run_resumes_from_its_last_checkpoint(tmp_path):
    out = tmp_path / "run"
    argv = [*RECIPE, "--seed", "5", "--out", str(out)]
    checkpoint = out / "stage2.safetensors"
    killed_at = kill_after(argv, tmp_path / "first", checkpoint)                       # killed in alignment stage 2
    assert 0 < killed_at < STEPS, f"stage 2 was killed at step {killed_at} of {STEPS}: not mid-stage"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "running" and list(manifest["stages"]) == ["1.1"]       # stage 1.1 finished, stage 2 did not

    signal_checkpoint = out / "signals" / "stage1.3" / "checkpoint.safetensors"
    signal_killed_at = kill_after(argv, tmp_path / "second", signal_checkpoint)          # the same command, killed in signal stage 1.3
    assert 0 < signal_killed_at < STEPS, f"stage 1.3 was killed at step {signal_killed_at} of {STEPS}: not mid-stage"
    printed = (tmp_path / "second.out").read_text()
    assert f"already complete ({STEPS} of {STEPS} steps): loaded stage1.1.safetensors" in printed
    assert f"resumed from step {killed_at} of {STEPS}" in printed and f"stage 2: resumed, resumed_from {killed_at}," in printed
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "running" and list(manifest["stages"]) == ALIGNMENT and (out / "model" / "vitron.safetensors").is_file()

    third = start(argv, tmp_path / "third")                                             # and again: it finishes
    assert third.wait() == 0, (tmp_path / "third.err").read_text()[-2000:]
    printed = (tmp_path / "third.out").read_text()
    assert f"already complete ({STEPS} of {STEPS} steps): loaded stage2.safetensors" in printed
    assert f"resumed from step {signal_killed_at} of {STEPS} (signals/stage1.3/checkpoint.safetensors)" in printed
    assert f"stage 1.3: resumed, resumed_from {signal_killed_at}," in printed
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "done" and len(manifest["attempts"]) == 3 and manifest["seed"] == 5
    assert list(manifest["stages"]) == [*ALIGNMENT, *SIGNAL_STAGES]
    assert manifest["stages"]["1.1"]["status"] == "complete, loaded on resume" and manifest["stages"]["1.1"]["resumed_from"] == 0
    assert manifest["stages"]["2"]["resumed_from"] == killed_at and manifest["stages"]["2"]["steps"] == STEPS
    assert manifest["stages"]["1.3"]["resumed_from"] == signal_killed_at and manifest["stages"]["3"]["status"] == "trained"
    assert checkpoint_step(checkpoint) == STEPS and checkpoint_step(signal_checkpoint) == STEPS
    assert (out / "model" / "vitron.safetensors").is_file() and (out / SIGNAL_WEIGHTS["3"]).is_file()
    assert not list(out.rglob("*.tmp")), "a temporary file of the killed runs was left behind"

    code, _, err = run(*argv[:-1], str(tmp_path / "whole"))                            # the same run, never interrupted
    assert code == 0, err
    for stage in ("2", "1.3", "3"): assert_same_tensors(stage_tensors(out, stage), stage_tensors(tmp_path / "whole", stage))

def test_seeded_runs_repeat_and_another_seed_differs(tmp_path):
    argv = ["train", "--steps-per-stage", "3", "--batch-size", "2", "--checkpoint-every", "3"]
    manifests, names = {}, [*ALIGNMENT, *SIGNAL_STAGES]
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        code, _, err = run(*argv, "--seed", str(seed), "--out", str(tmp_path / name))
        assert code == 0, err
        manifests[name] = json.loads((tmp_path / name / "manifest.json").read_text())
    losses = {name: [m["stages"][s]["final_loss"] for s in names] for name, m in manifests.items()}
    assert losses["a"] == losses["b"] and all(a != c for a, c in zip(losses["a"], losses["c"])), losses
    for stage in names: assert_same_tensors(stage_tensors(tmp_path / "a", stage), stage_tensors(tmp_path / "b", stage))
    a = manifests["a"]
    assert a["settings"]["steps"] == {stage: 3 for stage in names} and list(a["stages"]) == names
    assert a["specialists"]["used"] == "committed" and list(a["specialists"])[1:] == list(RECIPE_SPECIALISTS)
    assert all(len(a["specialists"][name]["sha256"]) == 64 for name in RECIPE_SPECIALISTS)
    assert_signals_trained_on_the_run(tmp_path / "a", a, {"referring": "data_samples/referring/referring.safetensors",
                                                          "generator": "data_samples/generator/generator.safetensors"})

def test_retrained_specialists_come_first_and_are_recorded(tmp_path):
    from vitron_nb.segmenter import load_segmenter
    from vitron_nb.referring import load_referring
    out = tmp_path / "run"
    code, printed, err = run("train", "--specialists", "train", "--steps-per-stage", "1", "--batch-size", "2", "--out", str(out))
    assert code == 0, err
    names = [*RECIPE_SPECIALISTS, *ALIGNMENT, *SIGNAL_STAGES]
    kind = lambda name: "specialist" if name in RECIPE_SPECIALISTS else "signal stage" if name in SIGNAL_STAGES else "alignment stage"
    assert [line.split(":")[0] for line in printed.splitlines() if line.startswith("[")] == [
        f"[{i}/{len(names)}] {kind(name)} {name}" for i, name in enumerate(names, 1)]
    assert RECIPE_SPECIALISTS == ("segmenter", "referring", "generator", "editor", "animator")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["specialists"]["used"] == "trained in this run" and list(manifest["stages"]) == names
    for name in RECIPE_SPECIALISTS:
        assert checkpoint_step(out / name / "checkpoint.safetensors") == 1 and manifest["stages"][name]["steps"] == 1
        assert manifest["specialists"][name] == manifest["stages"][name]["checkpoint"] == f"{name}/checkpoint.safetensors"
    # the referring segmenter fine-tuned the run's segmenter, not the committed one
    segmenter = out / "segmenter" / "checkpoint.safetensors"
    assert manifest["stages"]["referring"]["segmenter"] == {"path": "segmenter/checkpoint.safetensors", "sha256": file_sha256(segmenter)}
    tuned = load_referring(out / "referring" / "checkpoint.safetensors").sam.state_dict()
    gap = lambda other: max(float((v - other[k]).abs().max()) for k, v in tuned.items() if v.is_floating_point())
    near, far = gap(load_segmenter(segmenter).state_dict()), gap(load_segmenter().state_dict())
    assert near < 5e-3 < far, (near, far)             # one step of AdamW at lr 1e-3 moves a weight by about 1e-3
    # the editor started from the run's generator, not the committed one
    generator = out / "generator" / "checkpoint.safetensors"
    assert manifest["stages"]["editor"]["generator"] == {"path": "generator/checkpoint.safetensors", "sha256": file_sha256(generator)}
    assert_signals_trained_on_the_run(out, manifest, {"referring": "referring/checkpoint.safetensors", "generator": "generator/checkpoint.safetensors"})

def test_default_steps_are_those_of_the_committed_weights():
    "`--specialists train` (and `--only NAME`) retrains each specialist as its committed weights were trained; the signal stages likewise."
    from vitron_nb.core import DATA_SAMPLES
    from vitron_nb.signals import SIGNAL_SETTINGS, ABLATION_PATH
    for name in RECIPE_SPECIALISTS:
        record, settings = json.loads((DATA_SAMPLES / name / f"{name}.json").read_text()), specialist_settings(name)
        assert {k: record[k] for k in settings} == settings, name
    assert [specialist_settings(name)["steps"] for name in RECIPE_SPECIALISTS] == [800, 1000, 5000, 1300, 1900]
    arms = json.loads(ABLATION_PATH.read_text())["arms"]
    assert (arms["stage_1.3"]["training"]["steps"], arms["with_synergy"]["training"]["steps"]) == (SIGNAL_SETTINGS["steps"], SIGNAL_SETTINGS["synergy_steps"])

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

def test_retraining_the_specialists_is_refused_under_a_launch(tmp_path, monkeypatch):
    "Their loops do not use accelerate: under a multi-process launch each process would train its own copy into the same files."
    monkeypatch.setenv("WORLD_SIZE", "2")
    code, _, err = run("train", "--specialists", "train", "--steps-per-stage", "1", "--out", str(tmp_path / "s"))
    assert code == 2 and "--specialists train runs in one process" in err and not (tmp_path / "s").exists()

def test_only_vitron_resumed_keeps_the_records_of_the_call_that_trained_each_stage(tmp_path, monkeypatch):
    "`--only vitron` again into the same folder: finished stages are loaded and keep their record (time, loss); a removed one trains anew."
    from vitron_nb.model import STAGES
    for spec in STAGES.values(): monkeypatch.setitem(spec, "steps", 2)
    out, argv = tmp_path / "run", ["train", "--only", "vitron", "--out", str(tmp_path / "run")]
    record = lambda: json.loads((out / "model" / "metrics.json").read_text())["stages"]
    assert run(*argv)[0] == 0
    first = record()
    assert [r["stage"] for r in first] == ALIGNMENT and all(r["resumed_from"] == 0 and r["seconds"] > 0 for r in first)
    (out / "stage1.2.safetensors").unlink()
    assert run(*argv)[0] == 0
    second = record()
    assert second[:2] == [{**r, "status": "complete, loaded on resume"} for r in first[:2]]
    assert second[2]["resumed_from"] == 0 and second[2]["status"] == "trained" and second[2]["seconds"] > 0
    (out / "model" / "metrics.json").unlink()            # no earlier record: a loaded stage keeps the time its checkpoint holds
    assert run(*argv)[0] == 0
    third = record()
    assert all(r["status"] == "complete, loaded on resume" and r["seconds"] > 0 and r["final_loss"] is None for r in third)


def test_the_recipe_exports_the_record_in_the_committed_shape(tmp_path, monkeypatch):
    "`--only all --export` writes vitron-tiny's metrics.json as `--only vitron --export` does: the alignment stages a list, the signal stages beside."
    import vitron_nb.cli as cli, vitron_nb.model as M
    from vitron_nb.core import set_seed
    from vitron_nb.signals import llm_side_minutes
    out = tmp_path / "run"
    set_seed(0); M.save_trained(M.build_model(), out / "model")
    stages = {s: dict(stage=s, steps=2, resumed_from=0, seconds=60.0 * (k + 1), final_loss=1.0) for k, s in enumerate([*M.STAGES, *SIGNAL_STAGES])}
    monkeypatch.setattr(cli, "DATA_SAMPLES", tmp_path / "data")
    monkeypatch.setattr(M, "measure_understanding", lambda model, **kw: {"test": {}})     # the real one takes minutes; its place is what is tested
    cli._export_recipe(out, {}, {"command": "vitron train --only all", "stages": stages}, None)
    written = json.loads((tmp_path / "data" / "vitron-tiny" / "metrics.json").read_text())
    assert [r["stage"] for r in written["stages"]] == list(M.STAGES) and list(written["signal_stages"]) == list(SIGNAL_STAGES)
    assert written["understanding"] == {"test": {}}
    monkeypatch.setattr(M, "VITRON_TINY", tmp_path / "data" / "vitron-tiny")
    minutes = llm_side_minutes()                                                         # reads the exported record's list
    assert [minutes[s] for s in M.STAGES] == [1.0, 2.0, 3.0]
