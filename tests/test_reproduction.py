"A second run of the committed model's command lands within noise of every committed number (data_samples/reproduction)."
import json, pytest
from vitron_nb.core import VitronError
from vitron_nb.model import compare_records, headline_understanding, committed_llm, REPRODUCTION, VITRON_TINY

def test_compare_records_can_fail():
    test = compare_records({"rec": (0.12, 100), "vqa": (1.0, 50)}, {"rec": (0.15, 100), "vqa": (0.98, 50)})
    assert all(r["within"] for r in test)                 # a perfect score still allows one example of noise
    assert not compare_records({"rec": (0.9, 100)}, {"rec": (0.5, 100)})[0]["within"]
    assert not compare_records({"vqa": (1.0, 100)}, {"vqa": (0.9, 100)})[0]["within"]
    with pytest.raises(VitronError, match="do not measure the same things"): compare_records({"rec": (0.9, 100)}, {"vqa": (0.9, 100)})
    with pytest.raises(VitronError, match="values in \\[0, 1\\]"): compare_records({"rec": (1.5, 100)}, {"rec": (0.9, 100)})

def test_the_recipe_reproduces_the_committed_model():
    record = json.loads((REPRODUCTION / "vitron.json").read_text())
    assert record["reference"] == committed_llm(), "the committed model was retrained: run its command again and re-measure"
    assert record["command"].startswith("vitron train --only vitron --preset tiny --seed 0")
    committed = json.loads((VITRON_TINY / "metrics.json").read_text())["understanding"]
    rows = compare_records(headline_understanding(committed), headline_understanding(record["understanding"]))
    assert len(rows) == 5 + 1 + 7
    assert all(r["within"] for r in rows), [r for r in rows if not r["within"]]

def test_the_recipe_reproduces_the_committed_signal_side():
    from vitron_nb.signals import headline_signals, ABLATION_PATH
    committed, again = json.loads(ABLATION_PATH.read_text()), json.loads((REPRODUCTION / "signals.json").read_text())
    assert again["llm"] == committed["llm"] == committed_llm(), "measured against another LLM: run `vitron train --only signals` again"
    assert again["command"].startswith("vitron train --only signals --seed 0")
    rows = compare_records(headline_signals(committed), headline_signals(again))
    assert len(rows) == 27 and all(r["within"] for r in rows), [r for r in rows if not r["within"]]
