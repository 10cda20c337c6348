"Benchmark helpers report ratios measured in one process (no timed assertions); `measure_results` re-measures the task table at tiny n."
import contextlib, io, json
import nbformat, numpy as np, pytest, torch
from vitron_nb.core import VitronConfig, VitronError
from vitron_nb import bench
from vitron_nb.bench import (matmul_flops, llm_step_benchmark, latency, added_memory_mb, cost_growth, committed_records, results_rows,
                             results_table, measure_results, results_markdown, write_results_notebook)
from vitron_nb.llm import build_llm
from vitron_nb.cli import main

def test_matmul_and_mfu_are_consistent():
    torch.manual_seed(0)
    llm = build_llm(VitronConfig(llm_layers=1, d_llm=64, llm_heads=2, d_llm_ffn=128))
    r = llm_step_benchmark(llm, batch_size=2, seq_len=8, repeats=1)
    assert r["matmul_flops"] > 0 and r["mfu"] == pytest.approx(r["model_flops"] / r["matmul_flops"])
    assert r["model_flops"] == pytest.approx(6 * r["parameters"] * 16 / r["step_seconds"])

def test_latency_percentiles():
    r = latency(lambda x: sum(range(x)), [10, 100, 1000, 10])
    assert r["n"] == 4 and 0 <= r["p50"] <= r["p95"]
    with pytest.raises(VitronError, match="at least 2"): latency(lambda x: x, [1])

def test_results_table_from_records_is_the_committed_table():
    records = committed_records()
    assert results_table(records=records) == results_table()
    assert [r["task"] for r in results_rows(records={"edits": records["edits"]})] == ["image_edit", "video_edit"]   # a missing part: no rows
    assert results_rows(records={"edits": records["edits"]})[0]["record"] == "edits"        # no source given: the part's name

def test_added_memory_sees_an_allocation():
    import time
    def hold():                                 # 32 MB held for 50 ms: the sleep lets the sampling thread run on a busy machine
        a = np.ones((2000, 2000)); time.sleep(0.05); return a.sum()
    added = added_memory_mb(hold)
    assert added is not None and 28 < added < 80, added

def test_cost_growth_at_two_sizes():
    g = cost_growth(image_sizes=(32, 64), frames=(4,), repeats=1)
    assert [r["image_size"] for r in g["image_size"]] == [32, 64] and g["image_size"][0]["tokens"] < g["image_size"][1]["tokens"]
    row = g["video_length"][0]
    assert row["frames"] == 4 and row["seconds"] > 0 and row["animate"]["seconds"] > 0 and "vos_track" not in row   # no segmenter given
    assert "random" in g["note"]
    with pytest.raises(VitronError, match="at least 1"): cost_growth(repeats=0)

@pytest.mark.parametrize("kwargs, message", [(dict(n=0), "n must be a whole number of at least 1"), (dict(n_videos=-1), "n_videos must be"),
                                             (dict(n_latency=1), "n_latency must be a whole number of at least 2"), (dict(n=2.5), "got 2.5"),
                                             (dict(parts=("speed",)), "unknown parts"), (dict(parts=()), "unknown parts")])
def test_measure_results_refuses_bad_options_before_loading(kwargs, message):
    with pytest.raises(VitronError, match=message): measure_results(progress=False, **kwargs)

@pytest.fixture(scope="module")
def tiny():
    "The signal side, synergy, edits and three tasks' latency re-measured at two examples (about 30 s)."
    return measure_results(n=2, n_videos=1, n_latency=2, parts=("signals", "synergy", "edits", "latency"), latency_tasks=("image_qa", "ref_seg", "t2i"),
                           progress=False)

def _check_scores(rows, tasks):
    assert [r["task"] for r in rows] == tasks
    for r in rows:
        for key in ("routed", "oracle"):
            assert r[key] is None or (isinstance(r[key], float) and 0 <= r[key] <= 1), r
        assert r["record"].startswith("re-measured: ") and 0 < r["floor"] < 1

def test_measure_results_signals_edits_latency(tiny):
    json.dumps(tiny)                                                              # all of it is JSON
    assert tiny["parts"] == ["signals", "synergy", "edits", "latency"] and set(tiny["seconds"]) == set(tiny["parts"]) and tiny["peak_mb"] > 100
    rows = results_rows(records=tiny["records"])
    _check_scores(rows, ["ref_seg", "vos", "t2i", "image_edit", "video_edit"])
    assert all(r["routed"] is not None and r["oracle"] is not None for r in rows)
    a = tiny["records"]["ablation"]
    assert (a["n_images"], a["n_videos"], a["n_t2i"]) == (2, 1, 2) and {"text", "embeddings", "hybrid", "oracle"} <= set(a)
    e = tiny["records"]["edits"]
    assert (e["n_images"], e["n_videos"], e["seed"]) == (2, 1, 2025) and "instruction" in e and "box" not in e   # the chat route only
    s = tiny["synergy"]                                                           # both arms are committed: both re-measured, and said so
    assert s["measured"] and s["source"].startswith("re-measured") and set(s["arms"]) == {"with_synergy", "without_synergy"}
    assert set(tiny["latency"]) == {"image_qa", "ref_seg", "t2i"}
    assert all(r["n"] == 2 and 0 < r["p50"] <= r["p95"] for r in tiny["latency"].values())
    text = results_markdown(tiny)
    assert results_table(records=tiny["records"]) in text and s["source"] in text and "| hybrid |" in text

def test_results_notebook_is_valid_and_holds_the_tables(tiny, tmp_path):
    path = write_results_notebook(tiny, tmp_path / "results.ipynb")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.ipynb"]       # no temporary file left
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert results_table(records=tiny["records"]) in markdown and "Latency of one chat turn" in markdown
    pictures = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(pictures) == 2 and all(len(o["data"]["image/png"]) > 1000 for o in pictures)   # routed vs oracle, and latency

def test_synergy_is_read_from_the_record_without_the_second_arm(monkeypatch, tmp_path):
    "With no file at signals.WITHOUT_SYNERGY_PATH the synergy comparison is read from ablation.json, and says so."
    from vitron_nb import signals
    monkeypatch.setattr(signals, "WITHOUT_SYNERGY_PATH", tmp_path / "missing.safetensors")
    r = measure_results(n=2, n_videos=1, n_latency=2, parts=("signals", "synergy"), progress=False)
    s = r["synergy"]
    assert not s["measured"] and s["source"].startswith("from the record, not re-measured")
    assert set(s["arms"]) == {"with_synergy", "without_synergy"}
    assert "from the record, not re-measured" in results_markdown(r) and r["llm"]["command"].startswith("vitron train")

def test_measure_results_understanding():
    r = measure_results(n=2, n_videos=1, n_latency=2, parts=("understanding",), progress=False)
    rows = results_rows(records=r["records"])
    _check_scores(rows, ["rec", "region_caption", "image_qa", "video_qa", "video_grounding", "routing", "routing", "routing"])
    assert all(isinstance(row["routed"], float) and row["oracle"] is None for row in rows) and r["records"]["understanding"]["n_per_task"] == 2

def test_measure_results_animator():
    r = measure_results(n=2, n_videos=1, n_latency=2, parts=("animator",), progress=False)
    rows = results_rows(records=r["records"])
    _check_scores(rows, ["t2v", "t2v", "i2v", "i2v"])
    assert all(isinstance(row["routed"], float) and isinstance(row["oracle"], float) for row in rows)   # through the LLM, beside the true call
    assert r["records"]["animator"]["n"] == 1 and r["records"]["animator"]["steps"] == 10 and r["records"]["videos"]["n"] == 1
    assert all(r["records"]["videos"][task]["oracle"]["executed"] == 1.0 for task in ("t2v", "i2v"))

def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err): code = main(list(argv))
    return code, out.getvalue(), err.getvalue()

SPEED_STEP = lambda b: dict(stage="2", batch_size=b, step_seconds=2 / b, examples_per_second=b / 2, tokens_per_second=50.0 * b, mfu=0.05)
SPEED = {"matmul_gflops": 50.0, "matmul_gflops_after": 48.0, "llm_step": dict(tokens_per_second=1000.0, mfu=0.1), "stages": {"2": SPEED_STEP(8)},
         "stage2_batches": [SPEED_STEP(4), SPEED_STEP(8), SPEED_STEP(16)], "peak_mb": 1234.4, "threads": 1}

def test_cli_bench_table_writes_json_and_notebook(tiny, tmp_path, monkeypatch):
    "The speed benchmark is stubbed (its own tests are above); the re-measured part is the tiny run."
    asked = {}
    monkeypatch.setattr(bench, "run_benchmark", lambda config, n_latency, model_folder: json.loads(json.dumps(SPEED)))
    monkeypatch.setattr(bench, "measure_results", lambda **kwargs: asked.update(kwargs) or tiny)
    code, out, err = run("bench", "--table", "--n", "3", "--n-examples", "2", "--n-videos", "1", "--out", str(tmp_path / "bench"))
    assert code == 0, err
    assert asked == dict(n=2, n_videos=1, n_latency=3)
    written = json.loads((tmp_path / "bench" / "bench.json").read_text())
    assert written["matmul_gflops"] == 50.0 and written["results"]["records"]["ablation"] == tiny["records"]["ablation"]
    assert results_table(records=tiny["records"]) in out and "| stage 2 training step (batch 8) |" in out and str(tmp_path / "bench" / "results.ipynb") in out
    nb = nbformat.read(tmp_path / "bench" / "results.ipynb", as_version=4)
    nbformat.validate(nb)
    assert "vitron bench --table --n 3 --n-examples 2 --n-videos 1" in nb.cells[0].source
    assert any("Training throughput and MFU per stage" in c.source for c in nb.cells)
    assert sorted(p.name for p in (tmp_path / "bench").iterdir()) == ["bench.json", "results.ipynb"]

@pytest.mark.parametrize("argv, message", [(["--table", "--n", "1"], "--n must be at least 2"),
                                           (["--table", "--n-examples", "0"], "--n-examples must be at least 1"),
                                           (["--table", "--n-videos", "0"], "--n-videos must be at least 1"),
                                           (["--n-examples", "5"], "give them with --table"),
                                           (["--table", "--notebooks", "nbs"], "give it without --table"),
                                           (["--n", "0"], "--n must be at least 1")])
def test_cli_bench_refuses_bad_options_without_writing(argv, message, tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "run_benchmark", lambda *a, **k: pytest.fail("measured despite a bad option"))
    code, out, err = run("bench", *argv, "--out", str(tmp_path / "bench"))
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "bench").exists()

def test_cli_bench_table_needs_the_committed_model(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "run_benchmark", lambda *a, **k: pytest.fail("measured despite a bad option"))
    (tmp_path / "model").mkdir(); (tmp_path / "model" / "vitron.safetensors").write_bytes(b"")
    code, _, err = run("bench", "--table", "--model", str(tmp_path / "model"), "--out", str(tmp_path / "bench"))
    assert code == 2 and "re-measures the committed model" in err and not (tmp_path / "bench").exists()

def test_step_speedup_times_each_arm_restores_torch_threads_and_counts_real_tokens():
    "The stage-2 step with 1 and 2 threads, padded and packed, on the committed encoder and LLM; packing never computes more positions."
    from vitron_nb.model import build_model
    from vitron_nb.bench import step_speedup
    from vitron_nb.core import VitronError
    import torch
    before = torch.get_num_threads()
    r = step_speedup(build_model(None), threads=(1, 2), repeats=1, batches=3)
    arms = ["1 thread, padded", "1 thread, packed", "2 threads, padded", "2 threads, packed"]
    assert torch.get_num_threads() == before and r["stage"] == "2" and list(r["step_seconds"]) == list(r["speedup"]) == arms
    assert r["speedup"]["1 thread, padded"] == 1.0 and all(s > 0 for s in r["step_seconds"].values())
    assert 0 < r["fill"]["padded"] <= r["fill"]["packed"] <= 1
    with pytest.raises(VitronError, match="at least 1"): step_speedup(None, threads=(1, 0))

def test_take_turns_times_every_arm_in_each_round_and_packing_fill_counts_positions():
    "Each arm runs once a round (one warm-up round, untimed); packing_fill counts the positions padded and packed rows compute."
    from vitron_nb.bench import take_turns, packing_fill
    calls = []
    seconds = take_turns({"a": lambda i: calls.append(("a", i)), "b": lambda i: calls.append(("b", i))}, repeats=2)
    assert calls == [("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 2), ("b", 2)] and set(seconds) == {"a", "b"}
    fill = packing_fill([[4, 2, 2], [3, 3]])        # padded: 3 x 4 + 2 x 3 = 18 positions; packed: [4], [2, 2] and [3], [3]: 8 + 6 = 14
    assert fill == pytest.approx(dict(padded=14 / 18, packed=14 / 14))
