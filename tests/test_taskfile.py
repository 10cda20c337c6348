"The on-disk task format: exact round trips, clear errors, nothing half-written."
import json
from pathlib import Path
import numpy as np, pytest
from vitron_nb.core import VitronError
from vitron_nb.tasks import TASKS, MODULES, make_examples, make_example
from vitron_nb.taskfile import write_tasks, read_tasks, save_png, load_image

ROOT = Path(__file__).resolve().parent.parent

def test_round_trip_every_task(tmp_path):
    examples = make_examples(n_per_task=2, split="test")
    back = read_tasks(write_tasks(examples, tmp_path / "set"))
    assert [e.id for e in back] == [e.id for e in examples]
    for a, b in zip(examples, back):
        assert a.task == b.task and a.instruction == b.instruction and a.answer.text == b.answer.text
        for name in ("image", "video"):
            va, vb = getattr(a, name), getattr(b, name)
            assert (va is None and vb is None) or np.array_equal(va, vb)
        for name in ("mask", "masks", "image", "video", "target_mask", "target_masks"):
            va, vb = getattr(a.answer, name), getattr(b.answer, name)
            assert (va is None and vb is None) or np.array_equal(va, vb), (a.task, name)
        if a.region is not None: assert np.array_equal(a.region.to_mask(64, 64), b.region.to_mask(64, 64))

def test_only_some_tasks(tmp_path):
    write_tasks(make_examples(["rec", "vos"], 2, "val"), tmp_path / "s")
    assert {e.task for e in read_tasks(tmp_path / "s", tasks=["vos"])} == {"vos"}

@pytest.mark.parametrize("change,message", [
    (lambda d: d.update(task="detect"), "unknown task 'detect'"),
    (lambda d: d.update(image="missing.png"), "missing.png does not exist"),
    (lambda d: d.update(image=None), "needs an input 'image'"),
    (lambda d: d["answer"].pop("box"), "needs ['box']"),
    (lambda d: d.update(instruction="  "), "'instruction' must be a non-empty string"),
    (lambda d: d.update(region={"kind": "box", "box": [0.5, 0.5, 0.5, 0.9]}), "zero"),
    (lambda d: d.update(call={"module": "G", "instruction": "x"}), "unknown module 'G'"),
    (lambda d: d["answer"].update(box=[0.1, 0.2]), "4 numbers"),
])
def test_broken_lines_name_the_line_and_the_problem(tmp_path, change, message):
    folder = write_tasks([make_example("rec", 0, "val"), make_example("rec", 1, "val")], tmp_path / "s").parent
    lines = (folder / "tasks.jsonl").read_text().splitlines()
    d = json.loads(lines[1]); change(d); lines[1] = json.dumps(d)
    (folder / "tasks.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(VitronError, match="line 2") as e: read_tasks(folder)
    assert message in str(e.value)

def test_not_json_and_empty_video(tmp_path):
    (tmp_path / "tasks.jsonl").write_text('{"id": "a"\n')
    with pytest.raises(VitronError, match="line 1: not valid JSON"): read_tasks(tmp_path)
    folder = write_tasks([make_example("vos", 0, "val")], tmp_path / "v").parent
    frames = sorted((folder / "videos").glob("*/*.png"))
    for f in frames[1:]: f.unlink()
    with pytest.raises(VitronError, match="at least 2 frames"): read_tasks(folder)

def test_any_image_mode_is_converted(tmp_path):
    from PIL import Image
    Image.fromarray(np.zeros((10, 12, 4), np.uint8), "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(np.zeros((10, 12), np.uint8), "L").save(tmp_path / "grey.png")
    assert load_image(tmp_path / "rgba.png").shape == (10, 12, 3) == load_image(tmp_path / "grey.png").shape
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(VitronError, match="not a readable image"): load_image(tmp_path / "junk.png")

def test_a_failed_write_leaves_nothing(tmp_path):
    examples = make_examples(["rec"], 3, "val")
    examples[2].image = "not an array"                   # fails half way through
    with pytest.raises(Exception): write_tasks(examples, tmp_path / "half")
    assert list(tmp_path.iterdir()) == []

def test_committed_samples_cover_every_task_and_module_and_do_not_drift(tmp_path):
    samples = read_tasks(ROOT / "data_samples" / "pixelworld")
    assert {e.task for e in samples} == set(TASKS)
    assert {e.call.module for e in samples if e.call} == set(MODULES)
    fresh = write_tasks(make_examples(n_per_task=4, split="test"), tmp_path / "again")
    assert fresh.read_text() == (ROOT / "data_samples" / "pixelworld" / "tasks.jsonl").read_text(), \
        "data_samples/pixelworld differs from what the generator makes now: run `vitron data --split test --n 4 --out data_samples/pixelworld`"
