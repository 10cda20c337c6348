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

def test_the_flag_reaches_stage_1_2_alone(tmp_path, stub_alignment):
    import vitron_nb.model
    from tests.test_cli import run
    seen = stub_alignment(stop_at="1.2")["tasks"]
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

def test_the_record_names_the_flag_and_stage_1_2s_mix(tmp_path, stub_alignment):
    from tests.test_cli import run
    from vitron_nb.model import STAGES
    written = stub_alignment()
    code, _, err = run("train", "--only", "vitron", "--stage12-captions", "--out", str(tmp_path / "run"))
    assert code == 0, err
    record = written["record"]
    assert record["command"].endswith("--stage12-captions") and record["stages"][2]["tasks"] == STAGES["1.2"]["tasks"] | STAGE12_CAPTIONS
    assert "tasks" not in record["stages"][0] and "tasks" not in record["stages"][1]

def test_a_finished_stage_of_another_mix_is_refused_not_loaded(tmp_path, stub_alignment):
    from tests.test_cli import run
    from vitron_nb.model import STAGES
    stub_alignment(loaded={"step": 10 ** 6})                      # finished on the recipe's own mix
    code, _, err = run("train", "--only", "vitron", "--stage12-captions", "--out", str(tmp_path / "a"))
    assert code != 0 and "stage1.2.safetensors was trained on the stage's own task mix" in err and "another run folder" in err
    code, _, err = run("train", "--only", "vitron", "--out", str(tmp_path / "b"))
    assert code == 0, err                                                 # the same mix: loaded

def test_train_stage_keeps_its_mix_and_refuses_to_resume_under_another(tmp_path):
    from vitron_nb.model import build_model, train_stage, STAGES, check_stage_mix
    from vitron_nb.core import load_checkpoint, set_seed
    set_seed(0); model = build_model()
    mix = STAGES["1.2"]["tasks"] | STAGE12_CAPTIONS
    record = train_stage(model, "1.2", steps=1, batch_size=2, out_dir=tmp_path, tasks=mix, progress=False)
    assert record["tasks"] == mix                                         # the record names the mix, as the checkpoint does
    _, meta = load_checkpoint(tmp_path / "stage1.2.safetensors", "vitron-stage1.2", config=model.config)
    assert meta["tasks"] == mix
    with pytest.raises(VitronError, match="trained on the task mix"): train_stage(model, "1.2", steps=2, batch_size=2, out_dir=tmp_path, progress=False)
    check_stage_mix("x.safetensors", {}, None); check_stage_mix("x.safetensors", {"tasks": mix}, dict(mix))
    with pytest.raises(VitronError, match="own task mix, and this run asks for the task mix"): check_stage_mix("x.safetensors", {}, mix)
