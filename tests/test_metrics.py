"Scoring functions of vitron_nb.metrics, checked against values worked out by hand."
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from vitron_nb.core import VitronError
from vitron_nb.metrics import (mask_iou, ciou, miou, box_iou, acc_at_iou, boundary_f, j_and_f, viou, parse_box,
                               parse_st_box, format_box, format_st_box, track_from_st_box, parse_attributes,
                               attribute_accuracy, chrf, normalise_answer, qa_accuracy, psnr, frechet_distance)


def square_mask(size=8, top=2, left=2, side=4):
    mask = np.zeros((size, size), bool)
    mask[top:top + side, left:left + side] = True
    return mask


# ---------------------------------------------------------------- masks
def test_mask_iou_three_fifths():
    a = np.zeros((4, 4), bool); a[:2, :2] = True                      # 4 pixels
    b = np.zeros((4, 4), bool); b[0, 0] = b[0, 1] = b[1, 0] = b[2, 0] = True   # 4 pixels, 3 shared
    assert mask_iou(a, b) == pytest.approx(3 / 5)
    assert mask_iou(b, a) == pytest.approx(3 / 5)


def test_mask_iou_edge_cases_and_errors():
    empty = np.zeros((4, 4), bool)
    assert mask_iou(empty, empty) == 1.0
    assert mask_iou(empty, square_mask(4, 0, 0, 2)) == 0.0
    assert mask_iou(np.ones((4, 4), int), np.ones((4, 4), bool)) == 1.0   # 0/1 ints are accepted
    with pytest.raises(VitronError, match=r"\(4, 4\).*\(4, 5\)"):
        mask_iou(empty, np.zeros((4, 5), bool))
    with pytest.raises(VitronError, match="boolean"):
        mask_iou(np.full((4, 4), 0.3), empty)


def test_ciou_and_miou_differ_on_big_and_small_objects():
    big_true = np.zeros((16, 16), bool); big_true[2:12, 2:12] = True     # 100 px
    big_pred = big_true.copy(); big_pred[2, 2:12] = False                # 90 px, IoU 0.9
    small_true = np.zeros((16, 16), bool); small_true[13:15, 13:15] = True  # 4 px
    small_pred = np.zeros((16, 16), bool)                                # missed, IoU 0
    preds, trues = [big_pred, small_pred], [big_true, small_true]
    assert miou(preds, trues) == pytest.approx(0.45)
    assert ciou(preds, trues) == pytest.approx(90 / 104)


def test_ciou_miou_errors():
    with pytest.raises(VitronError, match="1 predictions but 2 references"):
        ciou([square_mask()], [square_mask(), square_mask()])
    with pytest.raises(VitronError, match="empty"):
        miou([], [])
    with pytest.raises(VitronError, match="example 1"):
        miou([square_mask(), square_mask(6)], [square_mask(), square_mask()])


# ---------------------------------------------------------------- boxes
def test_box_iou_one_seventh_and_none():
    assert box_iou((0, 0, 0.5, 0.5), (0.25, 0.25, 0.75, 0.75)) == pytest.approx(1 / 7)
    assert box_iou((0, 0, 0.2, 0.2), (0.5, 0.5, 1, 1)) == 0.0
    assert box_iou(None, None) == 1.0
    assert box_iou(None, (0, 0, 1, 1)) == 0.0 and box_iou((0, 0, 1, 1), None) == 0.0


@pytest.mark.parametrize("bad", [(0, 0, 1), (0.5, 0, 0.2, 1), (0, 0, 12, 30), (0, 0, float("nan"), 1), "0,0,1,1", (0, "a", 1, 1)])
def test_box_iou_refuses_malformed(bad):
    with pytest.raises(VitronError):
        box_iou(bad, (0, 0, 1, 1))


def test_acc_at_iou():
    truth = [(0, 0, 0.5, 0.5), (0.5, 0.5, 1, 1), (0.2, 0.2, 0.6, 0.6), (0.1, 0.1, 0.3, 0.3)]
    guess = [(0, 0, 0.5, 0.5), (0.25, 0.25, 0.75, 0.75), (0.2, 0.2, 0.6, 0.4), None]   # IoUs 1, 1/7, 1/2, 0
    assert acc_at_iou(guess, truth) == 0.5
    assert acc_at_iou(guess, truth, threshold=0.9) == 0.25
    assert acc_at_iou(guess, truth, threshold=0.1) == 0.75
    with pytest.raises(VitronError, match="threshold"):
        acc_at_iou(guess, truth, threshold=1.5)
    with pytest.raises(VitronError, match="3 predictions but 4"):
        acc_at_iou(guess[:3], truth)


# ---------------------------------------------------------------- boundary F and J&F
def test_boundary_f_shifted_square():
    square = square_mask()
    shifted = np.roll(square, 1, axis=1)
    assert boundary_f(shifted, square, bound_th=0) == pytest.approx(0.5)   # 6 of 12 outline pixels coincide
    assert boundary_f(shifted, square, bound_th=1) == 1.0
    assert boundary_f(shifted, square) == 1.0                              # default: ceil(0.008 * 11.3) = 1 px
    far = square_mask(64, 10, 10, 10)
    assert boundary_f(np.roll(far, 20, axis=1), far) == 0.0


def test_boundary_f_empty_and_errors():
    empty = np.zeros((8, 8), bool)
    assert boundary_f(empty, empty) == 1.0
    assert boundary_f(empty, square_mask()) == 0.0 and boundary_f(square_mask(), empty) == 0.0
    with pytest.raises(VitronError, match="bound_th"):
        boundary_f(square_mask(), square_mask(), bound_th=-0.1)
    with pytest.raises(VitronError, match="H x W"):
        boundary_f(np.zeros((2, 8, 8), bool), np.zeros((2, 8, 8), bool))


def test_j_and_f_by_hand():
    square = square_mask(); shifted = np.roll(square, 1, axis=1); empty = np.zeros_like(square)
    scores = j_and_f(np.stack([square, shifted, empty]), np.stack([square, square, empty]))
    assert scores["j"] == pytest.approx((1 + 0.6 + 1) / 3)     # shifted: 12 shared of 20
    assert scores["f"] == pytest.approx(1.0)
    assert scores["jf"] == pytest.approx(((1 + 0.6 + 1) / 3 + 1) / 2)
    assert j_and_f(np.stack([square, shifted, empty]), np.stack([square, square, empty]), drop_ends=True)["j"] == pytest.approx(0.6)
    missed = j_and_f(np.stack([empty, empty]), np.stack([square, square]))
    assert missed == {"j": 0.0, "f": 0.0, "jf": 0.0}
    with pytest.raises(VitronError, match="T x H x W"):
        j_and_f(square, square)


# ---------------------------------------------------------------- vIoU and spatio-temporal boxes
def test_viou_two_sevenths():
    box, other = (0, 0, 0.5, 0.5), (0.25, 0.25, 0.75, 0.75)
    true_track = [None, box, box, box, None, None]
    pred_track = [None, None, box, other, box, None]          # S_u = {1,2,3,4}, S_i = {2,3}, IoUs 1 and 1/7
    assert viou(pred_track, true_track) == pytest.approx((1 + 1 / 7) / 4)
    assert viou([None] * 4, [None] * 4) == 1.0
    assert viou([None] * 4, [box] * 4) == 0.0
    with pytest.raises(VitronError, match="5 frames but true_track has 6"):
        viou(pred_track[:5], true_track)


def test_box_text_format_and_parse():
    assert format_box((0.123, 0.3, 0.449, 0.61)) == "(0.12, 0.30, 0.45, 0.61)"
    assert format_st_box((0.123, 0.3, 0.449, 0.61), (2, 7)) == "(0.12, 0.30, 0.45, 0.61 | 2, 7)"
    assert parse_box("It is at [ 0.1 ,0.2, 0.5,0.6 ].") == (0.1, 0.2, 0.5, 0.6)
    assert parse_box("(1, 2) then (0.10, 0.20, 0.30, 0.40) and (0, 0, 1, 1)") == (0.1, 0.2, 0.3, 0.4)
    assert parse_st_box("answer: (0.12, 0.30, 0.45, 0.61 | 2, 7)") == ((0.12, 0.3, 0.45, 0.61), (2, 7))
    for garbage in ["", "no box", "((((", "(0.6, 0.1, 0.2, 0.5)", "(1, 2, 3, 4)", "(0.1, 0.2, 0.3)"]:
        assert parse_box(garbage) is None
    assert parse_st_box("(0.1, 0.1, 0.2, 0.2 | 7, 2)") is None
    assert parse_st_box("(0.1, 0.1, 0.2, 0.2)") is None
    with pytest.raises(VitronError, match="string"):
        parse_box(None)
    with pytest.raises(VitronError, match="start <= end"):
        format_st_box((0, 0, 1, 1), (3, 1))


def test_track_from_st_box():
    box = (0.0, 0.0, 0.5, 0.5)
    assert track_from_st_box(box, (1, 2), 4) == [None, box, box, None]
    assert track_from_st_box(box, (3, 9), 5) == [None, None, None, box, box]
    with pytest.raises(VitronError, match="n_frames"):
        track_from_st_box(box, (0, 1), 0)


def test_moving_box_text_format_and_parse():
    text = format_st_box((0.123, 0.3, 0.449, 0.61), (2, 7), end_box=(0.3, 0.28, 0.632, 0.59))
    assert text == "(0.12, 0.30, 0.45, 0.61 -> 0.30, 0.28, 0.63, 0.59 | 2, 7)"
    start, end = (0.12, 0.3, 0.45, 0.61), (0.3, 0.28, 0.63, 0.59)
    # old callers unpack two items and get the start box; with_end=True adds the end box (None for a held box)
    assert parse_st_box("answer: " + text) == (start, (2, 7))
    assert parse_st_box(text, with_end=True) == (start, (2, 7), end)
    assert parse_st_box("(0.12, 0.30, 0.45, 0.61 | 2, 7)", with_end=True) == (start, (2, 7), None)
    assert parse_st_box("[0.12,0.30,0.45,0.61→0.3,0.28,0.63,0.59|2,7]", with_end=True) == (start, (2, 7), end)
    assert parse_box(text) == start                        # a plain box reader sees the first box
    for bad in ["(0.1, 0.1, 0.2, 0.2 -> 0.5, 0.1, 0.2, 0.3 | 2, 7)",     # end box with x1 > x2
                "(0.1, 0.1, 0.2, 0.2 -> 0.5, 0.5 | 2, 7)",              # end box of two numbers
                "(0.1, 0.1, 0.2, 0.2 -> 0.3, 0.1, 0.4, 0.2 | 7, 2)",    # span backwards
                "(0.1, 0.1, 0.2, 0.2 -> 0.3, 0.1, 0.4, 0.2)"]:          # no span
        assert parse_st_box(bad) is None and parse_st_box(bad, with_end=True) is None
    with pytest.raises(VitronError, match="end_box"):
        format_st_box((0, 0, 1, 1), (1, 3), end_box=(0.5, 0, 0.2, 1))
    with pytest.raises(VitronError, match="end_box"):
        format_st_box((0, 0, 1, 1), (1, 3), end_box="(0, 0, 1, 1)")


def test_track_from_st_box_interpolates_by_hand():
    # (0, 0, 0.2, 0.2) at frame 1 moving to (0.4, 0.2, 0.6, 0.4) at frame 5: frame 2 is 1/4 of the way, frame 3 half
    track = track_from_st_box((0, 0, 0.2, 0.2), (1, 5), 7, end_box=(0.4, 0.2, 0.6, 0.4))
    assert track[0] is None and track[6] is None
    assert track[1] == pytest.approx((0, 0, 0.2, 0.2)) and track[5] == pytest.approx((0.4, 0.2, 0.6, 0.4))
    assert track[2] == pytest.approx((0.1, 0.05, 0.3, 0.25)) and track[3] == pytest.approx((0.2, 0.1, 0.4, 0.3))
    assert track[4] == pytest.approx((0.3, 0.15, 0.5, 0.35))
    # frames past the video are dropped (the box at frame 3 of 1..5 is still half way)
    assert track_from_st_box((0, 0, 0.2, 0.2), (1, 5), 4, end_box=(0.4, 0.2, 0.6, 0.4))[3] == pytest.approx((0.2, 0.1, 0.4, 0.3))
    # a one-frame span keeps the first box
    assert track_from_st_box((0, 0, 0.2, 0.2), (2, 2), 3, end_box=(0.4, 0.2, 0.6, 0.4)) == [None, None, (0, 0, 0.2, 0.2)]
    with pytest.raises(VitronError, match="end_box"):
        track_from_st_box((0, 0, 0.2, 0.2), (1, 5), 7, end_box=(0, 0, 1))
    with pytest.raises(VitronError, match="end_box"):
        track_from_st_box((0, 0, 0.2, 0.2), (1, 5), 7, end_box=(0, 0, 1.5, 1))
    with pytest.raises(VitronError, match="n_frames"):
        track_from_st_box((0, 0, 0.2, 0.2), (1, 5), True, end_box=(0, 0, 1, 1))


def test_two_keyframes_follow_a_moving_box_by_hand():
    # a 0.2-wide box slides right 0.1 a frame on frames 0-4. Held at its frame-0 place: IoU 1 on frame 0, 1/3 on frame 1
    # (intersection 0.1 x 0.2 = 0.02, union 0.04 + 0.04 - 0.02 = 0.06), 0 after: vIoU = (1 + 1/3) / 5 = 4/15.
    sliding = [(0.1 * t, 0.0, 0.1 * t + 0.2, 0.2) for t in range(5)]
    box, span, end_box = parse_st_box(format_st_box(sliding[0], (0, 4)), with_end=True)
    assert end_box is None and viou(track_from_st_box(box, span, 5, end_box), sliding) == pytest.approx(4 / 15)
    box, span, end_box = parse_st_box(format_st_box(sliding[0], (0, 4), sliding[4]), with_end=True)
    assert viou(track_from_st_box(box, span, 5, end_box), sliding) == pytest.approx(1.0)
    # the right boxes over too short a span: exact on frames 0 and 1, but S_u = 5 frames and S_i = {0, 1}: 2/5
    box, span, end_box = parse_st_box("(0.00, 0.00, 0.20, 0.20 -> 0.10, 0.00, 0.30, 0.20 | 0, 1)", with_end=True)
    assert viou(track_from_st_box(box, span, 5, end_box), sliding) == pytest.approx(2 / 5)


unit = st.floats(0, 1, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(unit, unit, unit, unit, st.integers(0, 100), st.integers(0, 100))
def test_box_round_trip(a, b, c, d, f1, f2):
    box = (min(a, c), min(b, d), max(a, c), max(b, d))
    span = (min(f1, f2), max(f1, f2))
    assert np.allclose(parse_box(format_box(box)), box, atol=0.005 + 1e-9)
    parsed_box, parsed_span = parse_st_box(format_st_box(box, span))
    assert np.allclose(parsed_box, box, atol=0.005 + 1e-9) and parsed_span == span
    end_box = (1 - box[2], 1 - box[3], 1 - box[0], 1 - box[1])          # the box mirrored: another normalised box
    parsed_box, parsed_span, parsed_end = parse_st_box(format_st_box(box, span, end_box), with_end=True)
    assert np.allclose(parsed_box, box, atol=0.005 + 1e-9) and parsed_span == span
    assert np.allclose(parsed_end, end_box, atol=0.005 + 1e-9)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_text_parsers_never_crash(text):
    assert parse_box(text) is None or len(parse_box(text)) == 4
    parse_st_box(text); parse_st_box(text + " -> " + text, with_end=True); parse_attributes(text); normalise_answer(text)


# ---------------------------------------------------------------- attributes, chrF, QA
def test_parse_attributes():
    assert parse_attributes("a tiny crimson plus sign") == {"colour": "red", "shape": "cross", "size": "small"}
    assert parse_attributes("A big emerald disc next to a small blue box.") == {"size": "large", "colour": "green", "shape": "circle"}
    assert parse_attributes("a mid-sized violet handwritten digit seven") == {
        "size": "medium", "colour": "purple", "shape": "digit", "digit": "seven"}
    assert parse_attributes("two red circles and the green one") == {"colour": "red", "shape": "circle"}
    assert parse_attributes("the number one") == {"shape": "digit", "digit": "one"}
    assert parse_attributes("zebra ##") == {}


def test_attribute_accuracy_is_strict():
    truths = [{"colour": "red", "shape": "cross", "size": "small"}, {"colour": "blue", "shape": "circle"}]
    assert attribute_accuracy(["a tiny crimson plus sign", "a navy ball"], truths) == 1.0
    assert attribute_accuracy(["a large crimson plus sign", "a navy ball"], truths) == 0.5   # size wrong
    assert attribute_accuracy(["a crimson plus sign", "a ball"], truths) == 0.0                # size, colour missing
    with pytest.raises(VitronError, match="colour"):
        attribute_accuracy(["x"], [{"colour": "circle"}])
    with pytest.raises(VitronError, match="1 predictions but 2"):
        attribute_accuracy(["x"], truths)


def test_chrf():
    texts = ["a small red cross in the top left", "a large navy circle moving right"]
    assert chrf(texts, texts) == pytest.approx(1.0)
    assert chrf(["zzz qqq"] * 2, texts) == 0.0
    assert 0.0 < chrf(["a tiny red cross at the top left", "a big navy circle"], texts) < 1.0
    with pytest.raises(VitronError, match="not a string"):
        chrf([1, 2], texts)


def test_normalise_and_qa_accuracy():
    assert normalise_answer("The Crimson one.") == "red 1"
    assert normalise_answer("It moves to the left!") == "it moves left"
    assert normalise_answer("an emerald plus sign, mid-sized") == "green cross medium"
    assert normalise_answer("Ten") == "10"
    preds = ["Three.", "a scarlet wedge", "yes", "down"]
    answers = ["3", "red triangle", "no", ["downward", "falling"]]
    assert qa_accuracy(preds, answers) == 0.75
    with pytest.raises(VitronError, match="single string"):
        qa_accuracy("yes", "yes")


# ---------------------------------------------------------------- PSNR and Frechet distance
def test_psnr_by_hand():
    image = np.full((2, 2, 3), 100.0); edited = image.copy(); edited[0, 0] += 10   # MSE 300 / 12 = 25
    assert psnr(edited, image) == pytest.approx(20 * math.log10(51))
    assert psnr(edited, image, mask=np.array([[True, True], [False, False]])) == pytest.approx(10 * math.log10(65025 / 50))
    assert psnr(edited, image, mask=np.array([[False, True], [True, True]])) == 100.0
    assert psnr(image, image) == 100.0
    assert psnr(np.stack([edited, image]), np.stack([image, image])) == pytest.approx(10 * math.log10(65025 / 12.5))
    assert psnr(edited / 255, image / 255, max_value=1.0) == pytest.approx(20 * math.log10(51))


def test_psnr_errors():
    image = np.zeros((2, 2, 3))
    with pytest.raises(VitronError, match="no pixels"):
        psnr(image, image, mask=np.zeros((2, 2), bool))
    with pytest.raises(VitronError, match="mask has shape"):
        psnr(image, image, mask=np.ones((3, 3), bool))
    with pytest.raises(VitronError, match="shape"):
        psnr(image, np.zeros((2, 3, 3)))


def exact_samples(mean, std, n=50, seed=0):
    z = np.random.default_rng(seed).standard_normal(n)
    z = (z - z.mean()) / z.std(ddof=1)
    return (mean + std * z).reshape(-1, 1)


def test_frechet_distance_1d_gaussians():
    # (mu1 - mu2)^2 + (s1 - s2)^2 = (3 - 1)^2 + (2 - 0.5)^2 = 6.25, exactly for samples with those moments
    assert frechet_distance(exact_samples(3, 2), exact_samples(1, 0.5, seed=1)) == pytest.approx(6.25, abs=1e-9)
    rng = np.random.default_rng(0)
    assert frechet_distance(rng.normal(3, 2, (20000, 1)), rng.normal(1, 0.5, (20000, 1))) == pytest.approx(6.25, abs=0.15)


def test_frechet_distance_multivariate_and_errors():
    rng = np.random.default_rng(1)
    feats = rng.normal(size=(300, 6))
    assert frechet_distance(feats, feats) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(feats, feats + 1.0) == pytest.approx(6.0, abs=1e-6)
    centred = feats - feats.mean(0)     # scaling by 2: S_b = 4 S, so tr(S + 4S - 2 * 2S) = tr(S), and equal means
    assert frechet_distance(centred, centred * 2) == pytest.approx(np.trace(np.cov(feats, rowvar=False)), rel=1e-6)
    with pytest.raises(VitronError, match="at least 2"):
        frechet_distance(feats[:1], feats)
    with pytest.raises(VitronError, match="N x D"):
        frechet_distance(feats[:, 0], feats[:, 0])
    with pytest.raises(VitronError, match="features per sample"):
        frechet_distance(feats, feats[:, :3])


# ---------------------------------------------------------------- discrimination
def test_metrics_separate_perfect_from_trivial():
    rng = np.random.default_rng(0)
    masks, boxes = [], []
    for _ in range(12):
        x, y = rng.integers(0, 40, 2); w, h = rng.integers(4, 20, 2)
        mask = np.zeros((64, 64), bool); mask[y:y + h, x:x + w] = True
        masks.append(mask); boxes.append((x / 64, y / 64, (x + w) / 64, (y + h) / 64))
    assert ciou(masks, masks) == 1.0 and ciou([np.zeros_like(m) for m in masks], masks) == 0.0
    assert acc_at_iou(boxes, boxes) == 1.0 and acc_at_iou([(0, 0, 1, 1)] * 12, boxes) < 0.2
    answers = [str(a) for a in rng.choice(["yes", "no", "red", "3"], 12)]
    assert qa_accuracy(answers, answers) == 1.0 and qa_accuracy(["yes"] * 12, answers) < 0.5
