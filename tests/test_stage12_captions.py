"`vitron train --only vitron --stage12-captions` (09_cli): stage 1.2 also shows caption and grounded-caption requests."
import pytest
from vitron_nb.core import VitronConfig, VitronError
from vitron_nb.cli import STAGE12_CAPTIONS

def test_the_mix_adds_both_caption_kinds_and_keeps_the_recipes():
    from vitron_nb.model import STAGES, stage_examples, CAPTION_KINDS
    assert set(STAGE12_CAPTIONS) == set(CAPTION_KINDS) and not set(CAPTION_KINDS) & set(STAGES["1.2"]["tasks"])
    mix = STAGES["1.2"]["tasks"] | STAGE12_CAPTIONS
    tasks = [e.task for step in range(6) for e in stage_examples("1.2", step, 8, VitronConfig(), tasks=mix)]
    assert set(tasks) == set(mix)                                     # every task of the mix is drawn, the captions too
    assert not set(CAPTION_KINDS) & {e.task for step in range(6) for e in stage_examples("1.2", step, 8, VitronConfig())}

def test_the_flag_reaches_stage_1_2_alone(monkeypatch, tmp_path):
    import vitron_nb.model
    from tests.test_cli import run
    seen = {}
    class Small:
        config = VitronConfig()
    def fake_stage(model, stage, steps, *args, tasks=None, **kwargs):
        seen[stage] = tasks
        if stage == "1.2": raise VitronError("stopped at stage 1.2")
        return dict(stage=stage, steps=steps, resumed_from=0)
    monkeypatch.setattr(vitron_nb.model, "build_model", lambda config: Small())
    monkeypatch.setattr(vitron_nb.model, "train_stage", fake_stage)
    code, _, err = run("train", "--only", "vitron", "--stage12-captions", "--out", str(tmp_path / "run"))
    assert code != 0 and "stopped at stage 1.2" in err
    assert seen["1.1"] is None and seen["2"] is None
    assert seen["1.2"] == vitron_nb.model.STAGES["1.2"]["tasks"] | STAGE12_CAPTIONS
    seen.clear()
    code, _, err = run("train", "--only", "vitron", "--out", str(tmp_path / "plain"))
    assert "stopped at stage 1.2" in err and seen["1.2"] is None          # without the flag, the recipe's own mix

def test_the_flag_belongs_to_the_alignment_stages():
    from tests.test_cli import run
    code, _, err = run("train", "--only", "llm", "--stage12-captions")
    assert code == 2 and "--stage12-captions belongs to --only vitron" in err
