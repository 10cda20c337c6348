"""caption_requests: the diagnostic of requests no module serves (captions and grounded captions), its committed record and its CLI entry."""
import json
import pytest
from vitron_nb.core import VitronError
from vitron_nb.model import caption_requests, CAPTION_KINDS, CAPTION_REQUESTS_PATH, DIAGNOSTICS, committed_llm
from vitron_nb.cli import build_parser


@pytest.mark.parametrize("n", [0, -1, 2.5, True])
def test_caption_requests_refuses_a_bad_count_before_it_answers(n):
    with pytest.raises(VitronError, match="n must be an int >= 1"):
        caption_requests(None, n=n)


def test_the_committed_record_adds_up_and_names_the_committed_model():
    record = json.loads(CAPTION_REQUESTS_PATH.read_text())
    assert record["llm"] == committed_llm()
    for kind in CAPTION_KINDS:
        row = record[kind]
        assert 0 <= row["in_kind"] + row["calls"] <= 1              # an answer in kind calls no module
        assert sum(row["modules"].values()) <= round(row["calls"] * record["n"])   # a call that does not parse names no module
        assert len(row["examples"]) == 3


def test_vitron_diagnose_names_every_diagnostic():
    parser = build_parser()
    diagnose = next(a for a in parser._subparsers._group_actions[0].choices.items() if a[0] == "diagnose")[1]
    for name in DIAGNOSTICS:
        assert name in diagnose.description
    assert "caption_requests" in DIAGNOSTICS
