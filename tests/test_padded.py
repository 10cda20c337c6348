"`vitron train --only vitron --padded` (09_cli): every alignment stage pads its batches instead of packing them, as the committed model was trained."
import pytest
from vitron_nb.core import VitronError, load_checkpoint, set_seed
from vitron_nb.model import build_model, train_stage

@pytest.fixture(scope="module")
def model():
    "One model for the resume tests (each trains into its own folder; none reads exact values)."
    set_seed(0); return build_model()

def test_the_flag_reaches_every_stage_and_the_record(tmp_path, stub_alignment):
    from tests.test_cli import run
    did = stub_alignment()
    code, _, err = run("train", "--only", "vitron", "--padded", "--out", str(tmp_path / "run"))
    assert code == 0, err
    assert did["packed"] == {"1.1": False, "2": False, "1.2": False} and did["record"]["command"].endswith("--padded")
    did = stub_alignment()
    code, _, err = run("train", "--only", "vitron", "--out", str(tmp_path / "plain"))
    assert code == 0 and set(did["packed"].values()) == {True} and "--padded" not in did["record"]["command"]

def test_the_flag_belongs_to_the_alignment_stages():
    from tests.test_cli import run
    for only in ("signals", "all"):
        code, _, err = run("train", "--only", only, "--padded")
        assert code == 2 and "--padded belongs to --only vitron" in err and "Traceback" not in err

def test_a_finished_stage_batched_the_other_way_is_refused_not_loaded(tmp_path, stub_alignment):
    from tests.test_cli import run
    stub_alignment(loaded={"step": 10 ** 6, "packed": True})          # finished, packed
    code, _, err = run("train", "--only", "vitron", "--padded", "--out", str(tmp_path / "a"))
    assert code != 0 and "stage1.1.safetensors was trained with its batches packed, and this run asks for them padded (--padded)" in err
    did = stub_alignment(loaded={"step": 10 ** 6, "packed": False})    # finished, padded
    code, _, err = run("train", "--only", "vitron", "--out", str(tmp_path / "b"))
    assert code != 0 and "trained with its batches padded (--padded), and this run asks for them packed" in err
    code, _, err = run("train", "--only", "vitron", "--padded", "--out", str(tmp_path / "c"))
    assert code == 0, err                                              # the same batching: loaded
    # no earlier record in the folder: each loaded stage's entry says how its checkpoint was batched
    assert [(r["status"], r["packed"]) for r in did["record"]["stages"]] == [("complete, loaded on resume", False)] * 3
    for flags in ((), ("--padded",)):                                  # a checkpoint older than the field: either way, not checked
        did = stub_alignment(loaded={"step": 10 ** 6})
        code, _, err = run("train", "--only", "vitron", *flags, "--out", str(tmp_path / f"old{len(flags)}"))
        assert code == 0, err
        assert [r["packed"] for r in did["record"]["stages"]] == [None] * 3  # unknown, and said so
    did = stub_alignment(loaded={"step": 10 ** 6, "packed": True})
    code, _, err = run("train", "--only", "vitron", "--out", str(tmp_path / "d"))
    assert code == 0 and [r["status"] for r in did["record"]["stages"]] == ["complete, loaded on resume"] * 3
    assert not any("packed" in r for r in did["record"]["stages"])     # packed, the default, adds nothing (as train_stage's record)

def test_a_loaded_stage_keeps_its_checkpoints_task_mix_in_the_record(tmp_path, stub_alignment):
    "--stage12-captions, every stage finished: stage 1.2's entry names the mix its checkpoint was trained on, the others none."
    from tests.test_cli import run
    from vitron_nb.cli import STAGE12_CAPTIONS
    from vitron_nb.model import STAGES
    mix = STAGES["1.2"]["tasks"] | STAGE12_CAPTIONS
    did = stub_alignment(loaded=lambda path: {"step": 10 ** 6, "packed": True, **({"tasks": mix} if "1.2" in str(path) else {})})
    code, _, err = run("train", "--only", "vitron", "--stage12-captions", "--out", str(tmp_path / "run"))
    assert code == 0, err
    assert [r.get("tasks") for r in did["record"]["stages"]] == [None, None, mix]

def test_train_stage_keeps_its_batching_and_refuses_to_resume_the_other_way(model, tmp_path):
    record = train_stage(model, "1.1", steps=1, batch_size=2, out_dir=tmp_path, progress=False, packed=False)
    _, meta = load_checkpoint(tmp_path / "stage1.1.safetensors", "vitron-stage1.1", config=model.config)
    assert record["packed"] is False and meta["packed"] is False
    with pytest.raises(VitronError, match=r"padded \(--padded\), and this run asks for them packed"):
        train_stage(model, "1.1", steps=2, batch_size=2, out_dir=tmp_path, progress=False)
    assert train_stage(model, "1.1", steps=2, batch_size=2, out_dir=tmp_path, progress=False, packed=False)["resumed_from"] == 1

def test_a_packed_checkpoint_says_so_and_refuses_a_padded_resume(model, tmp_path):
    train_stage(model, "1.1", steps=1, batch_size=2, out_dir=tmp_path, progress=False)
    _, meta = load_checkpoint(tmp_path / "stage1.1.safetensors", "vitron-stage1.1", config=model.config)
    assert meta["packed"] is True
    with pytest.raises(VitronError, match=r"packed, and this run asks for them padded \(--padded\)"):
        train_stage(model, "1.1", steps=2, batch_size=2, out_dir=tmp_path, progress=False, packed=False)

def test_padded_and_packed_batches_train_the_same_loss(tmp_path):
    "train_stage(packed=False) pads its batches: the first step's loss equals the packed one's to float precision, and the record says so."
    seen, records = {}, {}
    for packed in (True, False):
        set_seed(0); fresh, seen[packed] = build_model(), []
        records[packed] = train_stage(fresh, "1.1", steps=2, batch_size=2, out_dir=tmp_path / str(packed), resume=False, progress=False,
                                      packed=packed, on_step=lambda step, loss: seen[packed].append(loss))
    assert abs(seen[True][0] - seen[False][0]) < 1e-5 and len(seen[True]) == len(seen[False]) == 2
    assert records[False]["packed"] is False and "packed" not in records[True]      # the default (packed) adds nothing to the record
