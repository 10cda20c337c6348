"The curriculum from one object up (14_model, 'The object ramp in the recipe's mix'): stage 2's first `ramp` steps show pictures of fewer objects."
import re, pytest
from vitron_nb.core import VitronConfig, VitronError
from vitron_nb.model import stage_examples, STAGES

def _objects(step, ramp, n=24):
    "The objects in each grounded caption of one step: its boxes, one per object the picture holds."
    return [len(re.findall(r"\(", e.target_text())) for e in stage_examples("2", step, n, VitronConfig(), tasks={"grounded_caption": 1}, ramp=ramp)]

def test_the_cap_rises_from_one_object_in_equal_parts():
    ramp = 40                                                   # a quarter of it per cap: 1 up to step 9, then 2, 3 and 4
    assert set(_objects(0, ramp)) == {1} and set(_objects(9, ramp)) == {1}
    assert max(_objects(10, ramp)) == 2 and max(_objects(29, ramp)) == 3
    late = _objects(ramp, ramp, n=48)                           # from step `ramp` on, as many as the world draws
    assert late == _objects(ramp, 0, n=48) and max(late) == VitronConfig().max_objects

def test_no_ramp_is_the_recipe_as_it_was():
    assert "ramp" not in STAGES["2"]                            # the committed recipe keeps every picture as the world draws it
    first = stage_examples("2", 0, 16, VitronConfig())
    assert [e.id for e in first] == [e.id for e in stage_examples("2", 0, 16, VitronConfig(), ramp=0)]
    assert [e.target_text() for e in first] == [e.target_text() for e in stage_examples("2", 0, 16, VitronConfig(), ramp=0)]

def test_a_bad_ramp_is_refused_by_name():
    with pytest.raises(VitronError, match="ramp must be >= 0"): stage_examples("2", 0, 4, VitronConfig(), ramp=-1)
    from tests.test_cli import run
    code, _, err = run("train", "--only", "llm", "--object-ramp", "100")
    assert code == 2 and "--object-ramp" in err and "--only vitron" in err
    code, _, err = run("train", "--only", "vitron", "--object-ramp", "-5")
    assert code == 2 and "--object-ramp" in err
