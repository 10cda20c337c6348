"`vitron measure` and `model.measure_run`: an alignment run's model measured as the reproduction records do; bad input is one line, exit 2, nothing written."
import json
import pytest
from tests.test_cli import run
from vitron_nb.core import DATA_SAMPLES, VitronError
import vitron_nb.model as vm

def test_measure_refuses_bad_input_with_one_line_and_writes_nothing(tmp_path):
    out, model = str(tmp_path / "entry.json"), str(vm.VITRON_TINY)
    (tmp_path / "afile").write_text("x"); (tmp_path / "dir.json").mkdir()
    cases = [(["--model", str(tmp_path), "--out", out], "holds no trained model"),
             (["--model", model, "--out", str(tmp_path / "entry.txt")], "give a .json file"),
             (["--model", model, "--out", str(tmp_path / "dir.json")], "give a .json file"),
             (["--model", model, "--out", str(tmp_path / "afile" / "entry.json")], "a parent of it is a file"),
             (["--model", model, "--out", str(vm.VITRON_TINY / "metrics.json")], "the run's own training record"),
             (["--model", model, "--out", out, "--n", "0"], "n must be an int >= 1"),
             (["--model", model, "--out", out, "--n-wide", "1"], "n_wide must be an int >= 2"),
             (["--model", model, "--out", out, "--seed", "-1"], "seed must be an int >= 0"),
             (["--model", model, "--out", out, "--n-invocation", "-1"], "n_invocation must be an int >= 0")]
    for args, message in cases:
        code, _, err = run("measure", *args)
        assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err, (args, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "dir.json"] and not any((tmp_path / "dir.json").iterdir())

ANSWERS = {"written": ["a small red square"] * 5, "alone": ["a large red square"] * 5}
ROUTED = {k: {"accuracy": 1.0} for k in ("templated", "paraphrases", "fresh")} | {"n_per_task": 7, "per_item": 4, "seed": 2,
                                                                                  "paraphrase_calls": [], "fresh_calls": []}

@pytest.fixture
def got(monkeypatch):
    "Every measurement `measure_run` makes, stubbed: returns what each stub was called with (by name), filled as the run goes."
    got = {}
    def record(name, result):
        def stub(*args, **kwargs): got[name] = kwargs; return result
        return stub
    scores = lambda tasks: {t: {"n": 1} for t in tasks} | {"routing": {"accuracy": 1.0}}
    monkeypatch.setattr(vm, "load_trained", lambda folder, device=None: "model")
    monkeypatch.setattr(vm, "measure_understanding", record("understanding", {"n_per_task": 3}))
    monkeypatch.setattr(vm, "make_examples", record("examples", []))
    monkeypatch.setattr(vm, "model_predict", lambda model, examples, progress=False: {})
    monkeypatch.setattr("vitron_nb.evaluate.evaluate_by_unseen", lambda ex, pred, tasks: {"all": scores(tasks), "seen": scores(tasks)})
    monkeypatch.setattr(vm, "region_readouts", record("readouts", {k: {} for k in ("written", "written_alone", "probe", "clip_head", "written_unseen_pairs", "n_test")}
                                                      | {"answers": ANSWERS}))
    monkeypatch.setattr(vm, "size_readings", record("sizes", {"written": {}, "alone": {}}))
    monkeypatch.setattr(vm, "invocation", record("invocation", ROUTED))
    monkeypatch.setattr(vm, "caption_requests", record("captions", {k: {"in_kind": 1.0, "calls": 0.0, "modules": {}, "examples": []} for k in vm.CAPTION_KINDS}))
    return got

def test_each_measurement_gets_the_sizes_and_seed_asked_for(got, tmp_path):
    "A stubbed run: every measurement receives the n, n_wide, n_train and held-out seed given, and the entry is written as returned."
    code, out, err = run("measure", "--model", str(vm.VITRON_TINY), "--out", str(tmp_path / "e.json"), "--n", "3", "--n-wide", "5", "--seed", "2",
                         "--n-invocation", "7")
    assert code == 0, err
    assert got["understanding"]["n"] == 3 and got["understanding"]["seed"] == 2
    assert got["examples"]["n_per_task"] == 5 and got["examples"]["seed"] == 2 and got["examples"]["split"] == "test"
    assert (got["readouts"]["n_test"], got["readouts"]["n_train"], got["readouts"]["seed"]) == (5, 2000, 2)
    assert (got["sizes"]["n_test"], got["sizes"]["seed"]) == (5, 2) and (got["captions"]["n"], got["captions"]["seed"]) == (3, 2)
    assert (got["invocation"]["n"], got["invocation"]["seed"]) == (7, 2)
    assert got["readouts"]["keep_answers"] is True and got["sizes"]["answers"] is ANSWERS     # the sketches are asked once, not twice
    entry = json.loads((tmp_path / "e.json").read_text())
    assert entry["command"] == vm.committed_llm()["command"] and entry["wide_unseen"] is None and "routing" not in entry["wide"]
    assert {k: v for k, v in entry["measured"].items() if k != "seconds"} == dict(n=3, n_wide=5, n_train=2000, n_invocation=7, seed=2)
    assert entry["invocation"] == {k: ROUTED[k] for k in ("n_per_task", "per_item", "seed", "templated", "paraphrases", "fresh")}   # without the per-request lists
    assert set(entry["region_readouts"]) == {"written", "written_alone", "probe", "clip_head", "written_unseen_pairs"}
    assert all(set(v) == {"in_kind", "calls", "modules"} for v in entry["captions"].values())

def test_invocation_left_out_when_asked(got):
    "--n-invocation 0: no invocation is run and the entry has none; the default asks 50 a task, as the records did."
    entry = vm.measure_run(vm.VITRON_TINY, n_invocation=0)
    assert "invocation" not in got and "invocation" not in entry and entry["measured"]["n_invocation"] == 0
    assert "understanding" in got and "sizes" in got                   # the rest was measured
    import inspect
    assert inspect.signature(vm.measure_run).parameters["n_invocation"].default == 50
