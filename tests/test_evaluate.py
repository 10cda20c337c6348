"The evaluation harness: the oracle scores perfectly, trivial baselines far lower, on every task."
import json
import numpy as np, pytest
from vitron_nb.core import VitronError
from vitron_nb.tasks import TASKS, make_examples
from vitron_nb.evaluate import (evaluate, predict, PREDICTORS, write_predictions, read_predictions, Prediction,
                                evaluate_by_unseen, routing_accuracy)
from vitron_nb.evaluator import load_evaluator

@pytest.fixture(scope="module")
def evaluator(): return load_evaluator()

JUDGED = {("t2i", "attribute_accuracy"), ("t2v", "attribute_accuracy"), ("t2v", "motion_accuracy"), ("i2v", "attribute_accuracy"),
          ("i2v", "motion_accuracy"), ("image_edit", "target_accuracy"), ("video_edit", "target_accuracy")}

@pytest.fixture(scope="module")
def examples():
    generative = ["t2i", "t2v", "i2v", "image_edit", "video_edit"]
    return (make_examples([t for t in TASKS if t not in generative], 5, "test", start=900)
            + make_examples(generative, 12, "test", start=900))

@pytest.fixture(scope="module")
def scores(examples, evaluator):
    return {name: evaluate(examples, predict(examples, name), evaluator=evaluator) for name in PREDICTORS}

def test_every_task_and_routing_is_scored_under_the_fixed_names(scores):
    expected = {"ref_seg": {"ciou", "miou"}, "video_grounding": {"miou"}, "vos": {"jf", "j", "f"}, "rec": {"acc_iou50"},
                "region_caption": {"attribute_accuracy", "chrf"}, "image_qa": {"accuracy"}, "video_qa": {"accuracy"},
                "t2i": {"attribute_accuracy", "frechet"}, "t2v": {"attribute_accuracy", "motion_accuracy", "frechet"},
                "i2v": {"attribute_accuracy", "motion_accuracy", "frechet"}, "image_edit": {"target_accuracy", "psnr_outside"},
                "video_edit": {"target_accuracy", "psnr_outside"}, "routing": {"accuracy"}}
    for task, metrics in expected.items():
        assert metrics <= set(scores["oracle"][task]), task

def test_oracle_is_perfect(scores):
    "Exact metrics give the oracle 1.0; metrics judged by the evaluator network are bounded by its own accuracy (~0.99)."
    for task, metrics in scores["oracle"].items():
        for metric, value in metrics.items():
            if metric in ("n", "missing_predictions", "frechet"): continue
            floor = 99 if metric == "psnr_outside" else 0.9 if (task, metric) in JUDGED else 1.0
            assert value >= floor, (task, metric, value)

def test_baselines_score_far_lower(scores):
    for base in ("constant", "random"):
        for task, metrics in scores["oracle"].items():
            for metric, value in metrics.items():
                if metric in ("n", "missing_predictions", "frechet", "psnr_outside"): continue
                assert scores[base][task][metric] <= 0.6 * value, (base, task, metric, scores[base][task][metric])
    for task in ("t2i", "t2v", "i2v"):     # noise pictures are far from real renders in the evaluator's feature space
        assert scores["random"][task]["frechet"] > 5 * scores["oracle"][task]["frechet"] + 1
    assert scores["random"]["image_edit"]["psnr_outside"] < 15 < scores["oracle"]["image_edit"]["psnr_outside"]
    assert scores["random"]["video_edit"]["psnr_outside"] < 15

def test_text_only_answers_are_parsed(examples):
    rec = [e for e in examples if e.task == "rec"]
    words_only = {e.id: Prediction(e.id, type(e.answer)(text=e.answer.text)) for e in rec}
    assert evaluate(rec, words_only)["rec"]["acc_iou50"] == 1.0
    grounding = [e for e in examples if e.task == "video_grounding"]
    words_only = {e.id: Prediction(e.id, type(e.answer)(text=e.answer.text)) for e in grounding}
    assert 0.8 < evaluate(grounding, words_only)["video_grounding"]["miou"] < 1.0    # two keyframes, interpolated


def test_video_grounding_words_are_scored_as_a_moving_box():
    from vitron_nb.tasks import Example, Answer
    # a 0.2-wide box slides right 0.1 a frame over 5 frames. Two keyframes follow it exactly; held at its first place it
    # overlaps fully on frame 0, a third on frame 1 (0.02 / 0.06), then not at all: (1 + 1/3) / 5 = 4/15.
    sliding = [(0.1 * t, 0.0, 0.1 * t + 0.2, 0.2) for t in range(5)]
    truth = [Example("s", "video_grounding", "Where and when is the box?", Answer(track=sliding, span=(0, 4)))]
    def score(text, track=None):             # evaluate reports 4 decimals
        return evaluate(truth, {"s": Prediction("s", Answer(text=text, track=track))})["video_grounding"]["miou"]
    assert score("(0.00, 0.00, 0.20, 0.20 -> 0.40, 0.00, 0.60, 0.20 | 0, 4)") == pytest.approx(1.0, abs=1e-4)
    assert score("It is at (0.00, 0.00, 0.20, 0.20 | 0, 4).") == pytest.approx(4 / 15, abs=1e-4)
    # keyframes swapped: the answer slides left from x 0.4 to 0 and meets the truth only on frame 2: 1/5
    assert score("(0.40, 0.00, 0.60, 0.20 -> 0.00, 0.00, 0.20, 0.20 | 0, 4)") == pytest.approx(1 / 5, abs=1e-4)
    assert score("no idea") == 0.0
    assert score("ignored words", track=sliding) == pytest.approx(1.0, abs=1e-4)   # a returned track wins over the words

def test_predictions_file_round_trip_and_bad_calls(tmp_path, examples, evaluator):
    subset = [e for e in examples if e.task in ("rec", "vos", "t2i")]
    path = write_predictions(list(predict(subset, "oracle").values()), tmp_path / "p")
    lines = path.read_text().splitlines()
    d = json.loads(lines[-1]); d["call"] = {"module": "Z", "instruction": "x"}; lines[-1] = json.dumps(d)
    path.write_text("\n".join(lines) + "\n")
    preds = read_predictions(path)
    assert preds[d["id"]].call_error and "unknown module" in preds[d["id"]].call_error
    r = evaluate(subset, preds, evaluator=evaluator)
    assert r["rec"]["acc_iou50"] == 1.0 and r["routing"]["accuracy"] == pytest.approx(1 - 1 / len(subset), abs=1e-3)

def test_missing_predictions_and_bad_task(examples):
    rec = [e for e in examples if e.task == "rec"]
    r = evaluate(rec, {})
    assert r["rec"]["acc_iou50"] == 0.0 and r["routing"]["missing_predictions"] == len(rec)
    with pytest.raises(VitronError, match="unknown task"): evaluate(rec, {}, tasks=["detection"])
    with pytest.raises(VitronError, match="no examples"): evaluate(rec, {}, tasks=["vos"])

def test_seen_and_unseen_are_reported_apart(examples):
    by = evaluate_by_unseen(examples, predict(examples, "oracle"), tasks=["rec", "image_qa"])
    assert set(by) == {"all", "seen", "unseen"} and by["unseen"]["rec"]["n"] > 0
