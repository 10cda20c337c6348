"README.md is generated from nbs/index.ipynb (`make readme`); it must not drift."
import subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def test_readme_matches_index_notebook():
    fresh = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "markdown", "--log-level", "ERROR",
                            "--stdout", str(ROOT / "nbs" / "index.ipynb")], capture_output=True, text=True, check=True).stdout
    assert fresh == (ROOT / "README.md").read_text(), "README.md differs from nbs/index.ipynb: run `make readme`"

BENCH = ROOT / "data_samples" / "bench"
RERUN = {"bench.json": "vitron bench --out data_samples/bench",
         "notebook_costs.json": "vitron bench --notebooks nbs --out data_samples/bench"}

def markdown_tables(text: str) -> list[str]:
    "Every markdown table in `text`: each run of consecutive lines that start with `|`."
    tables, rows = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"): rows.append(line)
        elif rows: tables.append("\n".join(rows)); rows = []
    return tables

def test_readme_tables_are_the_committed_measurements():
    import json
    from vitron_nb.bench import benchmark_table, notebook_table
    tables = markdown_tables((ROOT / "README.md").read_text())
    for name, make in (("bench.json", benchmark_table), ("notebook_costs.json", notebook_table)):
        expected = make(json.loads((BENCH / name).read_text()))
        assert expected in tables, (f"README.md's table differs from data_samples/bench/{name}: put `{make.__name__}` of it "
                                    f"in nbs/index.ipynb and run `make readme` (or remeasure: `{RERUN[name]}`)")

def test_every_notebook_has_a_measured_cost():
    import json
    costs = json.loads((BENCH / "notebook_costs.json").read_text())
    measured, notebooks = {c["notebook"] for c in costs}, {p.stem for p in (ROOT / "nbs").glob("*.ipynb")}
    hint = f"rerun `{RERUN['notebook_costs.json']}`, then update the table in nbs/index.ipynb and run `make readme`"
    assert not notebooks - measured, f"no measured cost for {sorted(notebooks - measured)}: {hint}"
    assert not measured - notebooks, f"costs of notebooks that no longer exist {sorted(measured - notebooks)}: {hint}"
    failed = [c["notebook"] for c in costs if not c["ok"]]
    assert not failed, f"these notebooks failed when measured: {failed}: fix them and {hint}"


def test_readme_results_table_is_the_committed_records():
    from vitron_nb.bench import results_table
    assert results_table() in markdown_tables((ROOT / "README.md").read_text()), (
        "README.md's task table differs from the committed records: put `results_table()` in nbs/index.ipynb and run `make readme`")
