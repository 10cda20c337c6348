"Benchmark helpers report ratios measured in one process (no timed assertions)."
import pytest, torch
from vitron_nb.core import VitronConfig, VitronError
from vitron_nb.bench import matmul_flops, llm_step_benchmark, latency
from vitron_nb.llm import build_llm

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
