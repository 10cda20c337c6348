"""shape_after_colour: the shape the LLM picks once a region caption is started for it, after its own colour word and after the others."""
import json
import pytest
from vitron_nb.core import VitronError
from vitron_nb.model import shape_after_colour, SHAPE_AFTER_COLOUR_PATH, DIAGNOSTICS, committed_llm, load_trained, VITRON_TINY


@pytest.mark.parametrize("n", [0, -3, 1.5, True, "4"])
def test_it_refuses_a_bad_count_before_it_reads_the_model(n):
    with pytest.raises(VitronError, match="n_test must be an int >= 1"):
        shape_after_colour(None, n_test=n)


def test_the_committed_record_names_the_committed_model_and_adds_up():
    record = json.loads(SHAPE_AFTER_COLOUR_PATH.read_text())
    assert record["llm"] == committed_llm()
    assert DIAGNOSTICS["shape_after_colour"] == (shape_after_colour, SHAPE_AFTER_COLOUR_PATH)
    n, unseen = record["n_test"], record["n_unseen"]
    assert 0 < unseen < n
    for way in ("true_colour", "other_colours", "true_colour_other_picture", "other_colours_other_picture"):
        s = record[way]
        assert all(0 <= s[part] <= 1 for part in ("all", "seen", "unseen"))
        assert abs(s["all"] - (s["seen"] * (n - unseen) + s["unseen"] * unseen) / n) < 1e-3   # all is seen and unseen, weighted


def test_on_a_few_sketches_it_scores_shares_of_them():
    model = load_trained(VITRON_TINY)
    out = shape_after_colour(model, n_test=3, seed=1, keep_picks=True)
    assert (out["n_test"], out["seed"]) == (3, 1) and 0 <= out["n_unseen"] <= 3
    for way in ("true_colour", "other_colours", "true_colour_other_picture", "other_colours_other_picture"):
        assert out[way]["all"] in (0.0, 0.3333, 0.6667, 1.0)
    assert len(out["picks"]) == 3 and "picks" not in shape_after_colour(model, n_test=1)
