"The `vitron` command: help, the demo gallery and its model section, chat, eval, data; user errors are one clear line, exit 2, nothing written."
import contextlib, io, json, re
from pathlib import Path
import numpy as np
import pytest
from vitron_nb.cli import main, SAMPLE_TASKS
from vitron_nb.taskfile import load_image, read_tasks
from vitron_nb.metrics import box_iou
from vitron_nb.world import mask_box

PICTURE = SAMPLE_TASKS / "images" / "test-ref_seg-000000.png"       # a bundled held-out picture (64 x 64)

def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try: code = main(list(argv))
        except SystemExit as e: code = e.code
    return code, out.getvalue(), err.getvalue()

@pytest.mark.parametrize("command", [[], ["demo"], ["chat"], ["eval"], ["data"], ["train"], ["measure"]])
def test_help(command):
    code, out, _ = run(*command, "--help")
    assert code == 0 and "usage: vitron" in out

def test_demo_writes_a_gallery_of_all_twelve_tasks(tmp_path):
    code, out, err = run("demo", "--model", "none", "--out", str(tmp_path / "demo"))     # the model section: the next test
    assert code == 0, err
    page = (tmp_path / "demo" / "index.html").read_text()
    for task in ("ref_seg", "video_grounding", "vos", "rec", "region_caption", "image_qa", "video_qa", "t2i", "t2v", "i2v", "image_edit", "video_edit"):
        assert f"<td>{task}</td>" in page
    assert page.count("data:image/gif;base64") > 10 and str(tmp_path / "demo" / "index.html") in out

def _table_rows(out):
    "{task: [cells]} of the demo's model table (one example per task)."
    section = out[out.index("| task | the model answered |"):]
    rows = [line for line in section.splitlines()[2:] if line.startswith("| ")]
    return {cells[0]: cells for cells in ([c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows)}

def test_demo_model_section_answers_scores_and_shows_each_task(tmp_path):
    code, out, err = run("demo", "--n", "1", "--tasks", "rec,ref_seg,t2v", "--out", str(tmp_path / "demo"))
    assert code == 0, err
    assert "Vitron.tiny() (the committed model) answers 3 examples of the test split" in out
    rows = _table_rows(out)
    assert set(rows) == {"rec", "ref_seg", "t2v"}
    shown = read_tasks(SAMPLE_TASKS, tasks=["rec"])[0]                     # the demo answers the first example of each task
    box = tuple(float(v) for v in re.search(r"box \(([^)]*)\)", rows["rec"][3]).group(1).split(","))
    assert rows["rec"][4] == f"acc_iou50 {float(box_iou(box, shown.answer.box) >= 0.5):.2f}"     # the score is the box's
    assert rows["rec"][2] == "none (right)"                                  # rec is answered in words, no module
    assert re.fullmatch(r"attribute_accuracy [01]\.00, motion_accuracy [01]\.00", rows["t2v"][4]), rows["t2v"][4]   # the animator's video, judged
    if rows["t2v"][2].startswith("video_generation (right)"):                 # by the generator's keyframe (the committed route) or from the words
        assert rows["t2v"][3] in ("a 8-frame 64 x 64 video made by the animator from a keyframe the generator drew",
                                  "a 8-frame 64 x 64 video made by the animator from the words"), rows["t2v"][3]
    assert re.fullmatch(r"ciou \d\.\d\d, miou \d\.\d\d", rows["ref_seg"][4]) and rows["ref_seg"][3].startswith("mask of ")
    assert "turns call the module the task needs" in out and "Demo ran in" in out
    page = (tmp_path / "demo" / "index.html").read_text()
    model = page[page.index("answers 3 examples"):page.index("examples, all twelve tasks")]
    assert [task for task in re.findall(r"<tr><td>(\w+)</td>", model)] == ["ref_seg", "rec", "t2v"]
    assert model.count("data:image/png;base64") >= 4 and model.count("data:image/gif;base64") >= 2   # input, output, expected pictures; t2v's videos
    assert str(tmp_path / "demo" / "index.html") in out

def test_demo_edit_rows_show_the_edit_and_its_scores(tmp_path):
    code, out, err = run("demo", "--n", "1", "--tasks", "image_edit,video_edit", "--out", str(tmp_path / "demo"))
    assert code == 0, err
    rows = _table_rows(out)
    assert set(rows) == {"image_edit", "video_edit"} and "0 wait for a specialist not built yet" in out
    for task, module, output in (("image_edit", "image_editing", r"a 64 x 64 picture edited by the editor, \d+ px changed"),
                                 ("video_edit", "video_editing", r"a 8-frame 64 x 64 video edited by the editor, \d+ px changed per frame")):
        if not rows[task][2].startswith(f"{module} (right)"): continue      # the LLM's routing is measured elsewhere
        assert re.match(output, rows[task][3]), rows[task][3]
        assert re.fullmatch(r"target_accuracy [01]\.00, psnr_outside \d+\.\d\d", rows[task][4]), rows[task][4]
    page = (tmp_path / "demo" / "index.html").read_text()
    model = page[page.index("answers 2 examples"):page.index("examples, all twelve tasks")]
    assert "data:image/gif;base64" in model and "not built yet" not in model        # the edited video, as a GIF

def test_chat_segments_a_bundled_picture_and_writes_the_mask(tmp_path):
    code, out, err = run("chat", "--image", str(PICTURE), "Give me a segmentation of the green square.", "--out", str(tmp_path / "turn"))
    assert code == 0, err
    lines = dict(line.split(":", 1) for line in out.splitlines() if ":" in line[:8])
    call = re.search(r"<Module> (\w+) </Module> <Instruction> ([^<]*) </Instruction>", lines["call"])
    assert call and call.group(1) == "image_segmentation"
    assert f"prompted with the call's instruction '{call.group(2).strip()}'" in lines["ran"]     # the referring segmenter read it
    mask = load_image(tmp_path / "turn" / "mask.png", mask=True)
    assert mask.shape == (64, 64) and 0 < mask.sum() < 64 * 64
    area = int(re.search(r"mask of (\d+) px", lines["output"]).group(1))
    assert area == mask.sum() and f"{100 * area / 4096:.1f}%" in lines["output"]
    x1, y1, x2, y2 = mask_box(mask)
    assert f"box ({x1:.2f}, {y1:.2f}, {x2:.2f}, {y2:.2f})" in lines["output"]
    turn = json.loads((tmp_path / "turn" / "chat.json").read_text())
    assert turn["task"] == "ref_seg" and turn["output_file"] == "mask.png" and turn["call"]["module"] == "image_segmentation"
    assert turn["call"]["instruction"] == call.group(2).strip()
    assert sorted(p.name for p in (tmp_path / "turn").iterdir()) == ["chat.json", "mask.png"]
    code, out, err = run("chat", "--image", str(PICTURE), "Give me a segmentation of the green square.", "--out", str(tmp_path / "turn"))
    assert code == 0 and load_image(tmp_path / "turn" / "mask.png", mask=True).sum() == area      # its own folder: replaced, same answer

def test_chat_refuses_bad_input_with_one_line_and_writes_nothing(tmp_path):
    gif = tmp_path / "one.gif"
    from PIL import Image
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(gif)                  # a one-frame "video"
    (tmp_path / "frames").mkdir(); (tmp_path / "frames" / "notes.txt").write_text("no pictures here")
    (tmp_path / "mine").mkdir(); (tmp_path / "mine" / "keep.txt").write_text("a user's file")
    picture = ["--image", str(PICTURE)]
    cases = [(["  "], "the message is empty"),
             (["hi", *picture, "--box", "1,2,3"], "--box '1,2,3': give 4 numbers x1,y1,x2,y2"),
             (["hi", *picture, "--box", "a,b,c,d"], "--box 'a,b,c,d': give 4 numbers"),
             (["hi", *picture, "--click", "5"], "--click '5': give 2 numbers x,y"),
             (["hi", *picture, "--box", "1,2,3,4", "--click", "1,2"], "give --box or --click, not both"),
             (["hi", *picture, "--box", "10,10,90,90"], "lies outside"),
             (["hi", *picture, "--box", "0.2,0.2,0.2,0.5"], "has zero area"),
             (["hi", "--click", "3,4"], "--click needs a picture"),
             (["hi", "--image", str(tmp_path / "nope.png")], "--image: cannot read"),
             (["hi", "--image", str(Path(__file__))], "as a picture"),
             (["hi", *picture, "--video", str(gif)], "give --image or --video, not both"),
             (["hi", "--video", str(gif)], "one frame"),
             (["hi", "--video", str(tmp_path / "frames")], "the folder holds no pictures"),
             (["hi", "--model", str(tmp_path / "frames")], "no manifest.json"),
             (["hi", "--model", "huge"], "--model 'huge' is neither 'tiny'")]
    for argv, message in cases:
        code, out, err = run("chat", *argv, "--out", str(tmp_path / "out"))
        assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err, (argv, err)
        assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*")), argv
    code, out, err = run("chat", "hi", *picture, "--out", str(tmp_path / "mine"))        # a folder it did not write
    assert code == 2 and "already exists" in err and sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["keep.txt"]

def test_eval_writes_json_and_refuses_bad_input_without_writing(tmp_path):
    code, _, err = run("eval", "--model", "oracle", "--split", "val", "--n", "2", "--tasks", "rec,vos", "--out", str(tmp_path / "r.json"))
    assert code == 0, err
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["rec"]["acc_iou50"] == 1.0 and r["vos"]["jf"] == 1.0 and r["routing"]["accuracy"] == 1.0
    cases = [(["--model", "oracle", "--split", "val", "--tasks", "rec,segment"], "unknown task 'segment'"),
             (["--model", "oracle", "--data", str(tmp_path / "none.jsonl")], "does not exist"),
             (["--model", "oracle"], "give a split"),
             (["--model", str(tmp_path)], "holds no trained VITRON model"),
             (["--model", "gpt", "--split", "val"], "neither a built-in predictor"),
             (["--split", "val"], "exactly one of --model"),
             (["--predictions", str(tmp_path / "p.jsonl"), "--split", "val", "--n", "1", "--tasks", "rec"], "does not exist")]
    for args, message in cases:
        code, _, err = run("eval", *args, "--out", str(tmp_path / "bad.json"))
        assert code == 2 and message in err and err.count("\n") == 1, (args, err)
        assert not (tmp_path / "bad.json").exists()

def test_data_then_eval_a_broken_file(tmp_path):
    code, out, err = run("data", "--split", "val", "--n", "1", "--tasks", "rec", "--out", str(tmp_path / "set"))
    assert code == 0, err
    f = tmp_path / "set" / "tasks.jsonl"
    f.write_text(f.read_text() + "{oops\n")
    code, _, err = run("eval", "--model", "oracle", "--data", str(f))
    assert code == 2 and "line 2: not valid JSON" in err
    code, _, err = run("data", "--n", "1", "--out", str(tmp_path))            # refuses a folder it did not write
    assert code == 2 and "already exists" in err

def test_train_only_known_components():
    code, _, err = run("train", "--only", "diffusion")
    assert code == 2 and "choose tokenizer, clip, llm, segmenter, referring, generator, editor, animator, signals, evaluator or vitron" in err


def test_code_commit_names_the_checked_out_commit():
    import subprocess
    from vitron_nb.cli import code_commit
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True).stdout.strip()
    if not head: pytest.skip("not a git checkout")
    assert code_commit() == head and len(head) >= 7

def test_an_alignment_run_names_the_commit_it_started_from(monkeypatch, tmp_path, stub_alignment):
    "A run that spans commits names the one it started from, and the one at its end beside it."
    import vitron_nb.cli
    commits = iter(["aaa1111", "bbb2222", "bbb2222"])
    monkeypatch.setattr(vitron_nb.cli, "code_commit", lambda: next(commits))
    did = stub_alignment()
    code, _, err = run("train", "--only", "vitron", "--out", str(tmp_path / "run"))
    assert code == 0, err
    assert did["record"]["code_commit"] == "aaa1111" and did["record"]["code_commit_at_end"] == "bbb2222"

def test_retune_belongs_to_clip():
    for only in ("llm", "all"):
        code, _, err = run("train", "--only", only, "--retune")
        assert code == 2 and "--retune belongs to --only clip" in err
