"The `vitron` command: help, the demo gallery, eval, data; user errors are one clear line, exit 2, nothing written."
import contextlib, io, json
from pathlib import Path
import pytest
from vitron_nb.cli import main

def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try: code = main(list(argv))
        except SystemExit as e: code = e.code
    return code, out.getvalue(), err.getvalue()

@pytest.mark.parametrize("command", [[], ["demo"], ["eval"], ["data"], ["train"]])
def test_help(command):
    code, out, _ = run(*command, "--help")
    assert code == 0 and "usage: vitron" in out

def test_demo_writes_a_gallery_of_all_twelve_tasks(tmp_path):
    code, out, err = run("demo", "--out", str(tmp_path / "demo"))
    assert code == 0, err
    page = (tmp_path / "demo" / "index.html").read_text()
    for task in ("ref_seg", "video_grounding", "vos", "rec", "region_caption", "image_qa", "video_qa", "t2i", "t2v", "i2v", "image_edit", "video_edit"):
        assert f"<td>{task}</td>" in page
    assert page.count("data:image/gif;base64") > 10 and str(tmp_path / "demo" / "index.html") in out

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
    assert code == 2 and "choose tokenizer, clip, llm, segmenter, generator, evaluator or vitron" in err
