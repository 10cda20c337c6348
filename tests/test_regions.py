"Tests for vitron_nb.regions: the Region data model, its JSON, the sketch sampler and region_from_user."
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck
from PIL import Image
from skimage import draw

from vitron_nb.core import VitronError
from vitron_nb.regions import REGION_KINDS, Region, sample_region, region_from_user, show_region

SIZE = 64


def disk_mask(row=30, col=20, radius=9, size=SIZE):
    mask = np.zeros((size, size), bool); mask[draw.disk((row, col), radius, shape=(size, size))] = True
    return mask


def rect_mask(top, left, height, width, size=SIZE):
    mask = np.zeros((size, size), bool); mask[top:top + height, left:left + width] = True
    return mask


def triangle_mask(size=SIZE):
    mask = np.zeros((size, size), bool); mask[draw.polygon([12, 50, 46], [30, 10, 54], (size, size))] = True
    return mask


# ---------------------------------------------------------------- validation

@pytest.mark.parametrize("make, message", [
    (lambda: Region("click", points=[(0.2, 0.2), (1.3, 0.2)]), "region click point 2 (1.30, 0.20) lies outside the image"),
    (lambda: Region("polygon", points=[(0.1, 0.1), (0.5, -0.01), (0.5, 0.5)]), "point 2 (0.50, -0.01) lies outside"),
    (lambda: Region("box", box=(0.1, 0.2, 1.5, 0.5)), "lies outside the image"),
    (lambda: Region("box", box=(0.3, 0.2, 0.3, 0.5)), "zero area"),
    (lambda: Region("box", box=(0.1, 0.6, 0.3, 0.5)), "zero area"),
    (lambda: Region("mask", mask=np.zeros((8, 8), bool)), "empty (zero area)"),
    (lambda: Region("mask", mask=np.ones(8, bool)), "must be 2-D"),
    (lambda: Region("scribble", points=[(float("nan"), 0.1), (0.2, 0.2)]), "NaN"),
    (lambda: Region("ellipse", points=[(0.1, 0.1)]), "unknown region kind 'ellipse'"),
    (lambda: Region("click"), "needs `points`"),
    (lambda: Region("click", points=[(0.1, 0.1)] * 4), "1 to 3 points"),
    (lambda: Region("scribble", points=[(0.1, 0.1)]), "at least 2 points"),
    (lambda: Region("polygon", points=[(0.1, 0.1), (0.2, 0.2)]), "at least 3 points"),
    (lambda: Region("click", points=[(0.1, 0.1)], box=(0, 0, 1, 1)), "not `box`"),
])
def test_bad_regions_are_refused_with_a_clear_message(make, message):
    with pytest.raises(VitronError) as info: make()
    assert message in str(info.value)


def test_edges_of_the_image_are_allowed():
    Region("click", points=[(0.0, 0.0), (1.0, 1.0)]); Region("box", box=(0, 0, 1, 1))


# ---------------------------------------------------------------- rasterising and boxes

def test_to_mask_values_checked_by_hand():
    box = Region("box", box=(0.5, 0.75, 1.0, 1.0)).to_mask(4, 4)
    assert box.astype(int).tolist() == [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 1]]
    # a click on pixel (32, 32) of a 64 px image: a disk of radius max(1, round(0.04 * 64)) = 3 holds 29 pixel centres
    click = Region("click", points=[(32.5 / 64, 32.5 / 64)]).to_mask(64, 64)
    assert click.sum() == 29 and click[32, 32] and click[32, 35] and not click[32, 36]
    square = Region("polygon", points=[(0.25, 0.25), (0.75, 0.25), (0.75, 0.75), (0.25, 0.75)]).to_mask(8, 8)
    assert square.sum() == 16 and square[2:6, 2:6].all()
    assert Region("mask", mask=np.eye(2, dtype=bool)).to_mask(4, 4).astype(int).tolist() == \
        [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]]
    stroke = Region("scribble", points=[(0.1, 0.5), (0.9, 0.5)]).to_mask(64, 64)
    assert stroke[31:33, 6:58].all() and np.flatnonzero(stroke.any(1)).tolist() == [31, 32]   # 2 px wide at row 31.5


def test_box_mask_box_round_trip_is_exact():
    mask = rect_mask(10, 20, 7, 13)
    box = Region("mask", mask=mask).to_box()
    assert box == (20 / 64, 10 / 64, 33 / 64, 17 / 64)
    assert np.array_equal(Region("box", box=box).to_mask(64, 64), mask)


def test_to_box_pads_points_by_their_radius():
    assert Region("click", points=[(0.5, 0.5)]).to_box() == pytest.approx((0.46, 0.46, 0.54, 0.54))
    assert Region("polygon", points=[(0.1, 0.2), (0.5, 0.2), (0.3, 0.9)]).to_box() == pytest.approx((0.1, 0.2, 0.5, 0.9))
    assert Region("click", points=[(0.0, 1.0)]).to_box() == pytest.approx((0.0, 0.96, 0.04, 1.0))   # clipped


# ---------------------------------------------------------------- JSON

def test_json_round_trips_every_kind(tmp_path):
    mask = disk_mask()
    Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / "object.png")
    regions = [Region("click", points=[(0.25, 0.5)]), Region("box", box=(0.125, 0.25, 0.5, 0.75)),
               Region("scribble", points=[(0.1, 0.1), (0.2, 0.3)]),
               Region("polygon", points=[(0.1, 0.1), (0.9, 0.1), (0.5, 0.8)]), Region("mask", mask=mask)]
    for region in regions:
        assert Region.from_json(region.to_json(mask_path="object.png"), root=tmp_path) == region


def test_json_rounds_to_4_decimals():
    stored = Region("click", points=[(0.123456, 0.5)]).to_json()
    assert stored == {"kind": "click", "points": [[0.1235, 0.5]]}
    assert Region("box", box=(0.1, 0.2, 0.333333, 0.4)).to_json() == {"kind": "box", "box": [0.1, 0.2, 0.3333, 0.4]}


def test_json_errors_name_the_problem(tmp_path):
    with pytest.raises(VitronError, match="mask_path"): Region("mask", mask=disk_mask()).to_json()
    with pytest.raises(VitronError, match="'box'"): Region.from_json({"kind": "box", "points": [[0.1, 0.1]]})
    with pytest.raises(VitronError, match="'kind'"): Region.from_json({"points": [[0.1, 0.1]]})
    with pytest.raises(VitronError, match="missing.png"): Region.from_json({"kind": "mask", "mask": "missing.png"}, root=tmp_path)
    with pytest.raises(VitronError, match="list"): Region.from_json([["click"]])
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(VitronError, match="empty.png"): Region.from_json({"kind": "mask", "mask": "empty.png"}, root=tmp_path)


# ---------------------------------------------------------------- sampling

@pytest.mark.parametrize("kind", REGION_KINDS)
@pytest.mark.parametrize("mask", [disk_mask(), rect_mask(5, 30, 20, 12), triangle_mask()], ids=["disk", "rect", "triangle"])
def test_sampled_sketches_point_at_the_object(kind, mask):
    rng = np.random.default_rng(1)
    true_box = Region("mask", mask=mask).to_box()
    for _ in range(10):
        region = sample_region(mask, rng, kind)
        assert region.kind == kind
        drawn = region.to_mask(*mask.shape); precision = (drawn & mask).sum() / drawn.sum()
        iou = (drawn & mask).sum() / (drawn | mask).sum()
        if kind in ("click", "scribble"): assert precision >= 0.8, (kind, precision)
        if kind in ("polygon", "mask"): assert iou >= 0.6, (kind, iou)
        if kind == "box":
            x1, y1, x2, y2 = region.box; tx1, ty1, tx2, ty2 = true_box
            inter = max(0, min(x2, tx2) - max(x1, tx1)) * max(0, min(y2, ty2) - max(y1, ty1))
            assert inter / ((x2 - x1) * (y2 - y1) + (tx2 - tx1) * (ty2 - ty1) - inter) >= 0.6


def test_sampled_click_counts_and_polygon_sizes():
    rng = np.random.default_rng(0); mask = disk_mask(radius=15)
    counts = {len(sample_region(mask, rng, "click").points) for _ in range(60)}
    assert counts == {1, 2, 3}
    assert all(len(sample_region(mask, rng, "polygon").points) >= 3 for _ in range(20))
    assert {sample_region(mask, rng).kind for _ in range(100)} == set(REGION_KINDS)


def test_sampling_is_deterministic_for_a_seed():
    mask = triangle_mask()
    for kind in (*REGION_KINDS, None):
        first = sample_region(mask, np.random.default_rng(42), kind)
        assert first == sample_region(mask, np.random.default_rng(42), kind)
    different = [sample_region(mask, np.random.default_rng(seed), "click") for seed in range(5)]
    assert len({tuple(r.points) for r in different}) > 1


def test_sampling_refuses_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(VitronError, match="empty"): sample_region(np.zeros((8, 8), bool), rng)
    with pytest.raises(VitronError, match="2-D"): sample_region(np.ones((2, 8, 8), bool), rng)
    with pytest.raises(VitronError, match="kind"): sample_region(disk_mask(), rng, "lasso")
    with pytest.raises(VitronError, match="Generator"): sample_region(disk_mask(), 3)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=st.sampled_from(["rect", "disk"]), top=st.integers(0, 60), left=st.integers(0, 60),
       height=st.integers(1, 40), width=st.integers(1, 40), radius=st.floats(1.0, 20.0),
       seed=st.integers(0, 2**31 - 1))
def test_property_every_kind_validates_and_overlaps(shape, top, left, height, width, radius, seed):
    if shape == "rect": mask = rect_mask(top, left, height, width)
    else: mask = disk_mask(top, left, radius)
    if not mask.any(): return
    rng = np.random.default_rng(seed)
    for kind in REGION_KINDS:
        region = sample_region(mask, rng, kind)
        rebuilt = Region(region.kind, points=region.points, box=region.box, mask=region.mask)   # validates again
        assert rebuilt == region
        x1, y1, x2, y2 = region.to_box(); assert 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1
        assert (region.to_mask(*mask.shape) & mask).any(), (kind, region)


# ---------------------------------------------------------------- what users type

def test_region_from_user_cases():
    assert region_from_user((16, 32, 48, 64), 64, 64) == Region("box", box=(0.25, 0.5, 0.75, 1.0))   # pixels
    assert region_from_user((16, 32, 48, 64), 64, 128).box == (0.125, 0.5, 0.375, 1.0)             # width 128
    assert region_from_user([0.1, 0.2, 0.3, 0.4], 64, 64).box == (0.1, 0.2, 0.3, 0.4)
    assert region_from_user([(31, 15)], 64, 64).points == [(31.5 / 64, 15.5 / 64)]                 # pixel centre
    assert region_from_user([(0.2, 0.3), (0.4, 0.5)], 64, 64) == Region("click", points=[(0.2, 0.3), (0.4, 0.5)])
    polygon = region_from_user([(0.1, 0.1), (0.9, 0.1), (0.9, 0.9), (0.1, 0.9)], 64, 64)
    assert polygon.kind == "polygon" and len(polygon.points) == 4
    mask = disk_mask()
    assert region_from_user(mask.astype(np.uint8), 64, 64) == Region("mask", mask=mask)
    assert region_from_user(mask, 64, 64).mask.sum() == mask.sum()
    given_region = Region("box", box=(0, 0, 1, 1)); assert region_from_user(given_region, 64, 64) is given_region
    assert region_from_user({"kind": "box", "box": [0, 0, 0.5, 0.5]}, 64, 64).box == (0.0, 0.0, 0.5, 0.5)


@pytest.mark.parametrize("value, message", [
    ("the red ball", "str"), (42, "int"), (None, "NoneType"), ([], "list"),
    ([(0.1, 0.2, 0.3)], "list"), (np.zeros((32, 32), bool), "64 x 64"), (np.full((64, 64), 7), "0/1"),
    ([(70, 3)], "pixel point 1 (70, 3) lies outside"), ((0.5, 0.5, 0.5, 0.9), "zero area"),
])
def test_region_from_user_refuses(value, message):
    with pytest.raises(VitronError) as info: region_from_user(value, 64, 64)
    assert message in str(info.value)


def test_show_region_draws_every_kind():
    import matplotlib; matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    image = np.full((64, 64, 3), 128, np.uint8); mask = triangle_mask(); image[mask] = (245, 130, 25)
    rng = np.random.default_rng(0)
    fig, axes = plt.subplots(1, len(REGION_KINDS))
    for ax, kind in zip(axes, REGION_KINDS):
        assert show_region(image, sample_region(mask, rng, kind), ax=ax, title=kind) is ax
    assert len(axes[0].collections) == 1 and len(axes[1].patches) == 1 and len(axes[2].lines) == 1
    assert len(axes[3].patches) == 1 and len(axes[4].images) == 2
    with pytest.raises(VitronError, match="H x W x 3"): show_region(np.zeros((4, 4, 5)), Region("box", box=(0, 0, 1, 1)))
    plt.close(fig)
