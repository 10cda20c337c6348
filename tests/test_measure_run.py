"`vitron measure` and `model.measure_run`: an alignment run's model measured as the reproduction records do; bad input is one line, exit 2, nothing written."
import json
from tests.test_cli import run
from vitron_nb.core import DATA_SAMPLES
from vitron_nb.model import measure_run, WIDE_TASKS, VITRON_TINY

def test_measure_refuses_bad_input_with_one_line_and_writes_nothing(tmp_path):
    out = str(tmp_path / "entry.json")
    cases = [(["--model", str(tmp_path), "--out", out], "holds no trained model"),
             (["--model", str(VITRON_TINY), "--out", str(tmp_path / "entry.txt")], "give a .json file"),
             (["--model", str(VITRON_TINY), "--out", out, "--n", "0"], "n must be an int >= 1"),
             (["--model", str(VITRON_TINY), "--out", out, "--n-wide", "1"], "n_wide must be an int >= 2")]
    for args, message in cases:
        code, _, err = run("measure", *args)
        assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err, (args, err)
    assert list(tmp_path.iterdir()) == []

def test_the_entry_holds_what_the_side_run_records_hold():
    "The fields `measure_run` returns are those of every measured run in `vitron_region_token.json` (the record it was written from)."
    record = json.loads((DATA_SAMPLES / "reproduction" / "vitron_region_token.json").read_text())
    measured = {"understanding", "wide", "wide_seen", "wide_unseen", "region_readouts", "captions"}
    for field in ("two_token_views_runs", "two_token_caption_runs", "two_token_full_runs"):
        for entry in record[field]:
            assert measured <= set(entry), (field, measured - set(entry))
            assert set(entry["wide"]) == set(WIDE_TASKS) and entry["wide"]["rec"]["n"] == record["n_wide"]
            assert set(entry["region_readouts"]) == {"written", "written_alone", "probe", "clip_head", "written_unseen_pairs"}
