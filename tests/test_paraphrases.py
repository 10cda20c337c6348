"Held-out paraphrase examples: deterministic, answerable, unambiguous, exactly answered, and scored like template examples."
import json
import numpy as np, pytest
from vitron_nb.core import VitronError
from vitron_nb.world import COLOURS, DIGIT_NAMES, HELD_OUT, handwritten_digits, mask_box
from vitron_nb.tasks import TASKS, Description, resolve, make_examples
from vitron_nb.metrics import parse_box, parse_st_box
from vitron_nb.evaluate import evaluate, predict
from vitron_nb.paraphrases import (load_paraphrases, paraphrase_examples, build_paraphrase, possible, QUESTION_KINDS,
                                   template_vocabulary, word_novelty, words)

LINES = load_paraphrases()
GENERATIVE = ("t2i", "t2v", "i2v", "image_edit", "video_edit")

def index_of(fragment: str) -> int:
    return next(i for i, l in enumerate(LINES) if fragment in l["instruction"])

def build(fragment: str, item: int = 0, **kwargs):
    return build_paraphrase(index_of(fragment), item, lines=LINES, **kwargs)

def near(pixels, colour) -> bool:
    "All pixels within the world's per-object tint (+-12) of `colour`."
    return bool((np.abs(pixels.astype(int) - np.array(COLOURS[colour])) <= 12).all())

def test_the_file_has_a_question_kind_for_every_question_and_one_nonsense_line():
    assert len(LINES) == 32 and [l["instruction"] for l in LINES if l["task"] is None] == ["Blorp the frobnicated zorblax, kindly."]
    for line in LINES:
        if line["task"] in QUESTION_KINDS: assert line["kind"] in QUESTION_KINDS[line["task"]], line
    assert {l["kind"] for l in LINES if "kind" in l} == {"colour", "count", "exists", "digit", "direction", "appear", "bounce"}

def test_bad_lines_are_refused_with_their_line_number(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(LINES[0]) + "\n" + json.dumps({**LINES[13], "kind": "smell"}) + "\n")
    with pytest.raises(VitronError, match="line 2: a image_qa line needs 'kind'"): load_paraphrases(path)
    path.write_text(json.dumps({**LINES[0], "attributes": {"colour": "pink"}}) + "\n")
    with pytest.raises(VitronError, match="unknown attribute colour='pink'"): load_paraphrases(path)

def test_deterministic_with_unique_ids():
    a = paraphrase_examples(per_item=2, tasks=["rec", "image_qa", "video_qa"])
    b = paraphrase_examples(per_item=2, tasks=["rec", "image_qa", "video_qa"])
    assert [e.id for e in a] == [e.id for e in b] and len({e.id for e in a}) == len(a) == 2 * 10
    assert a[0].id == "test-paraphrase07-rec-000" and a[0].meta["paraphrase"] == 7 and a[1].meta["index"] == 1
    for x, y in zip(a, b):
        assert x.answer.text == y.answer.text and np.array_equal(x.image if x.image is not None else x.video,
                                                                y.image if y.image is not None else y.video)
    other = paraphrase_examples(per_item=2, tasks=["rec"], seed=1)
    assert not np.array_equal(other[0].image, a[0].image)              # another seed, another scene

def test_every_named_object_is_there_exactly_once():
    for i, line in enumerate(LINES):
        if line["task"] is None or line["task"] in ("t2i", "t2v", "i2v") or line.get("kind") in ("count", "exists"): continue
        named = {k: v for k, v in line["attributes"].items() if k in ("colour", "shape", "size")}
        if line.get("kind") == "digit": named["shape"] = "digit"
        for item in range(2):
            ex, scene = build_paraphrase(i, item, lines=LINES)
            if named: assert resolve(Description(**named), scene.objects) == [ex.meta["target"]], (line["instruction"], item)
            if "next_to" in line:                                        # the anchor is unique and the target its nearest object
                anchor = resolve(Description(**line["next_to"]), scene.objects)
                assert len(anchor) == 1
                distance = [np.hypot(o.x - scene.objects[anchor[0]].x, o.y - scene.objects[anchor[0]].y) for o in scene.objects]
                distance[anchor[0]] = np.inf
                assert int(np.argmin(distance)) == ex.meta["target"]

def test_image_questions_answered_from_the_scene():
    for item in range(3):
        ex, scene = build("Which hue", item)                             # the only mid-sized diamond's colour, also in its pixels
        target = scene.objects[ex.meta["target"]]
        assert (target.shape, target.size, ex.answer.text) == ("diamond", "medium", target.colour)
        assert near(ex.image[int(target.y), int(target.x)][None], ex.answer.text)
    counts = [build("Tally up", item)[0].answer.text for item in range(4)]
    assert counts == ["0", "1", "2", "0"]
    for item in range(4):
        ex, scene = build("Tally up", item)
        assert ex.answer.text == str(sum(o.colour == "orange" for o in scene.objects))
        ex, scene = build("lilac wedge", item)
        assert ex.answer.text == ("yes" if item % 2 == 0 else "no")
        assert any(o.colour == "purple" and o.shape == "triangle" for o in scene.objects) == (item % 2 == 0)
        ex, scene = build("scrawl in emerald", item)                     # the handwriting sample really shows that digit
        digit = scene.objects[ex.meta["target"]]
        assert digit.colour == "green" and handwritten_digits()[1][digit.digit_sample] == DIGIT_NAMES.index(ex.answer.text)

def test_video_questions_answered_from_the_frames():
    for item in range(4):
        ex, scene = build("crimson block drift", item)
        path, bounced = scene.trajectory(ex.meta["target"])
        dx, dy = np.subtract(path[1], path[0])
        if 0 not in bounced:
            assert ex.answer.text == ({1: "right", -1: "left"}[int(np.sign(dx))] if abs(dx) > abs(dy) else {1: "down", -1: "up"}[int(np.sign(dy))])
        ex, scene = build("azure plus", item)
        _, masks = scene.render_video()
        first = int(np.flatnonzero(masks[ex.meta["target"]].any((1, 2)))[0])
        assert ex.answer.text == str(first) and (first > 0) == (item % 2 == 1)
        ex, scene = build("ricochet", item)
        assert ex.answer.text == ("yes" if item % 2 == 0 else "no") == ("yes" if scene.trajectory(ex.meta["target"])[1] else "no")

def test_boxes_masks_and_edits_are_exact():
    ex, scene = build("big scarlet lozenge")
    target = scene.objects[ex.meta["target"]]
    assert (target.colour, target.shape, target.size) == ("red", "diamond", "large")
    assert ex.answer.text.startswith("red diamond: ") and np.allclose(parse_box(ex.answer.text), ex.answer.box, atol=0.005)
    ex, scene = build("crimson disc")
    assert ex.answer.mask.sum() > 20 and near(ex.image[ex.answer.mask], "red") and ex.call.module == "image_segmentation"
    assert ex.answer.box == mask_box(ex.answer.mask) == ex.call.region
    ex, scene = build("Spot the amber ball")
    start, span, end = parse_st_box(ex.answer.text, with_end=True)
    assert end is not None                                               # a moving box: the end box at the last frame
    assert span == ex.answer.span and np.allclose(start, ex.answer.track[span[0]], atol=0.006) and np.allclose(end, ex.answer.track[span[1]], atol=0.006)
    ex, scene = build("Dye the azure ball")                              # blue circle -> yellow circle: held out, so unseen
    changed = np.any(ex.image != ex.answer.image, axis=-1)
    assert changed.any() and not (changed & ~ex.answer.target_mask).any()
    assert near(ex.answer.image[ex.answer.target_mask & changed], "yellow") and ex.meta["unseen"] is True
    ex, scene = build("tangerine wedge")
    assert ex.answer.attributes == {"colour": "green", "shape": "triangle"} and ex.call.instruction == "editing: make the orange triangle green"
    ex, scene = build("tapped at <region>")
    assert ex.region.kind == "click" and ex.region.to_mask(64, 64).any()
    assert build("scribbled over")[0].region.kind == "scribble"

def test_generation_renders_what_was_asked():
    ex, _ = build("huge violet ball")
    assert ex.answer.attributes == {"colour": "purple", "shape": "circle", "size": "large", "position": "top left"}
    x1, y1, x2, y2 = ex.answer.box
    assert (x1 + x2) / 2 < 0.4 and (y1 + y2) / 2 < 0.4 and near(ex.answer.image[ex.answer.mask], "purple")
    ex, _ = build("navy plus sign zooming")                             # no size asked: none in the call or the attributes
    assert ex.call.instruction == "generation: a blue cross moving down quickly" and "size" not in ex.answer.attributes
    ys = [np.nonzero(m)[0].mean() for m in ex.answer.masks]
    assert all(b > a for a, b in zip(ys, ys[1:]))                      # it really moves down
    ex, _ = build("golden block should climb")
    assert ex.call.instruction == "animation: the yellow square moves up slowly" and np.array_equal(ex.image, ex.answer.video[0])

def test_splits_and_bad_arguments():
    train = paraphrase_examples("train", per_item=1, tasks=["video_qa", "image_edit"])
    held = {i for i, l in enumerate(LINES) if not possible(l, "train") and l["task"] in ("video_qa", "image_edit")}
    assert held == {17, 18, 28} and {e.meta["paraphrase"] for e in train}.isdisjoint(held) and len(train) == 3
    assert all(e.id.startswith("train-paraphrase") and not e.meta["unseen"] for e in train)
    with pytest.raises(VitronError, match="has no task"): build_paraphrase(31)
    with pytest.raises(VitronError, match="outside 0..31"): build_paraphrase(32)
    with pytest.raises(VitronError, match="held-out colour-shape"): build_paraphrase(17, split="train")
    with pytest.raises(VitronError, match="unknown split"): paraphrase_examples("dev")
    with pytest.raises(VitronError, match="per_item"): paraphrase_examples(per_item=0)

def test_oracle_scores_one_and_constant_does_not():
    examples = paraphrase_examples(per_item=2, tasks=[t for t in TASKS if t not in GENERATIVE])
    oracle, constant = evaluate(examples, predict(examples, "oracle")), evaluate(examples, predict(examples, "constant"))
    assert set(oracle) == {t for t in TASKS if t not in GENERATIVE} | {"routing"}
    for task, metrics in oracle.items():
        for metric, value in metrics.items():
            if metric not in ("n", "missing_predictions"): assert value == 1.0, (task, metric, value)
    assert constant["rec"]["acc_iou50"] < 0.5 and constant["image_qa"]["accuracy"] < 0.5 and constant["routing"]["accuracy"] < 0.5

def test_generation_and_editing_oracle_is_judged_right():
    "The evaluator network judges these; on real renders it is right, so the oracle gets full marks here too."
    from vitron_nb.evaluator import load_evaluator
    examples = paraphrase_examples(per_item=1, tasks=GENERATIVE)
    scores = evaluate(examples, predict(examples, "oracle"), evaluator=load_evaluator())
    for task in GENERATIVE:
        for metric, value in scores[task].items():
            if metric == "frechet": assert value < 1e-6
            elif metric == "psnr_outside": assert value == 100.0
            elif metric != "n": assert value == 1.0, (task, metric, value)

def test_the_words_are_new():
    vocabulary = template_vocabulary()
    assert {w for e in make_examples(["image_qa", "video_qa", "vos"], 20, "train") for w in words(e.instruction)} <= vocabulary
    rows = word_novelty(LINES)
    assert all(r["novel"] for r in rows)
    assert "ricochet" in rows[index_of("ricochet")]["novel"] and "lemon" not in rows[index_of("ricochet")]["novel"]
    assert np.median([r["content_share"] for r in rows]) > 0.5
