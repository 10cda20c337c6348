"Tests for vitron_nb.viz: exact pixels from the numpy drawing helpers, GIF/PNG/HTML round trips, and error messages."
import base64, io, os

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from vitron_nb.core import VitronError
from vitron_nb.viz import (PALETTE, data_uri, draw_boxes, fig_to_array, html_table, image_to_png_bytes,
                           mask_overlay, show_image, show_images, show_video, video_to_gif)


def scene(height=48, width=80):
    "Grey image with a red disk (centre row 22, column 20, radius 10) and a blue rectangle (rows 30..47, columns 34..55)."
    rows, cols = np.mgrid[:height, :width]
    disk = (cols - 20) ** 2 + (rows - 22) ** 2 <= 10 ** 2
    rect = (cols >= 34) & (cols < 56) & (rows >= 30) & (rows < 50)
    image = np.full((height, width, 3), 128, np.uint8)
    image[disk] = (215, 40, 40); image[rect] = (45, 85, 225)
    return image, np.stack([disk, rect])


def outline_by_hand(mask):
    "Mask pixels with a 4-neighbour outside the mask or outside the image, by explicit loops."
    height, width = mask.shape
    result = np.zeros_like(mask)
    for r in range(height):
        for c in range(width):
            if not mask[r, c]: continue
            for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                rr, cc = r + dr, c + dc
                if not (0 <= rr < height and 0 <= cc < width) or not mask[rr, cc]:
                    result[r, c] = True
    return result


def moving_disk(count=5, size=24):
    rows, cols = np.mgrid[:size, :size]
    masks = np.stack([(cols - 5 - 3 * t) ** 2 + (rows - 12) ** 2 <= 4 ** 2 for t in range(count)])
    frames = np.full((count, size, size, 3), 128, np.uint8)
    frames[masks] = (215, 40, 40)
    return frames, masks


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


# ---------------------------------------------------------------- mask_overlay

def test_palette_is_distinct_rgb():
    assert len(PALETTE) >= 8 and len(set(PALETTE)) == len(PALETTE)
    assert all(len(c) == 3 and all(0 <= v <= 255 for v in c) for c in PALETTE)


def test_overlay_changes_only_masked_pixels():
    image, masks = scene()
    out = mask_overlay(image, masks)
    assert out.dtype == np.uint8 and out.shape == image.shape
    union = masks.any(0)
    np.testing.assert_array_equal(out[~union], image[~union])
    assert (out[union] != image[union]).any(-1).all()          # every masked pixel changed (colours differ)
    np.testing.assert_array_equal(image, scene()[0])             # input not modified


def test_overlay_outline_is_full_colour_and_hand_computed():
    image, masks = scene()
    out = mask_overlay(image, masks)
    for k, mask in enumerate(masks):
        outline = outline_by_hand(mask)
        assert (out[outline] == PALETTE[k]).all()
        interior = mask & ~outline
        assert not (out[interior] == PALETTE[k]).all(-1).any()   # interior is a blend, not the full colour
    rect_outline = outline_by_hand(masks[1])
    # rectangle rows 30..47 (cut by the image bottom), columns 34..55: its bottom row 47 is outlined at the border
    expected = np.zeros_like(masks[1]); expected[[30, 47], 34:56] = True; expected[30:48, [34, 55]] = True
    np.testing.assert_array_equal(rect_outline, expected)


def test_overlay_blend_values_by_hand():
    image, masks = scene()
    out = mask_overlay(image, masks, alpha=0.25, colours=[(0, 0, 0), (200, 100, 0)])
    # rectangle interior: 0.75 * (45, 85, 225) + 0.25 * (200, 100, 0) = (83.75, 88.75, 168.75)
    assert out[40, 45].tolist() == [84, 89, 169]
    # disk interior: 0.75 * (215, 40, 40) = (161.25, 30, 30)
    assert out[22, 20].tolist() == [161, 30, 30]
    assert out[12, 20].tolist() == [0, 0, 0]                    # top of the disk: outline, full colour
    np.testing.assert_array_equal(mask_overlay(image, masks, alpha=0.0, colours=[(0, 0, 0)])[22, 20], image[22, 20])


def test_overlay_accepts_one_mask_lists_and_none():
    image, masks = scene()
    np.testing.assert_array_equal(mask_overlay(image, masks[1]), mask_overlay(image, [np.zeros_like(masks[0]), masks[1]],
                                                                              colours=[PALETTE[1], PALETTE[0]]))
    np.testing.assert_array_equal(mask_overlay(image, None), image)
    np.testing.assert_array_equal(mask_overlay(image, masks.astype(np.uint8)), mask_overlay(image, masks))


def test_float_image_in_unit_range_is_converted():
    image = np.zeros((4, 4, 3)); image[0, 0] = 1.0
    out = mask_overlay(image, None)
    assert out.dtype == np.uint8 and out[0, 0].tolist() == [255, 255, 255] and out[1, 1].tolist() == [0, 0, 0]
    with pytest.raises(VitronError, match=r"values must lie in \[0, 1\]"):
        mask_overlay(np.full((4, 4, 3), 1.5), None)
    with pytest.raises(VitronError, match="got dtype int64"):
        mask_overlay(np.zeros((4, 4, 3), np.int64), None)


# ---------------------------------------------------------------- draw_boxes

def test_draw_boxes_lands_on_hand_computed_rows_and_columns():
    image, masks = scene()                                      # 48 rows x 80 columns
    box = (0.25, 0.5, 0.5, 1.0)                                 # columns 20..39, rows 24..47
    out = draw_boxes(image, [box], colours=[(255, 255, 255)])
    drawn = (out != image).any(-1)
    expected = np.zeros((48, 80), bool)
    expected[[24, 47], 20:40] = True; expected[24:48, [20, 39]] = True
    np.testing.assert_array_equal(drawn, expected)
    assert (out[expected] == 255).all()


def test_box_from_mask_outlines_the_mask_extent():
    image, masks = scene(64, 64)
    box = (34 / 64, 30 / 64, 56 / 64, 50 / 64)                  # the rectangle: columns 34..55, rows 30..49
    drawn = (draw_boxes(image, [None, box]) != image).any(-1)
    assert drawn.sum() == 2 * 22 + 2 * 20 - 4
    assert drawn[30, 34:56].all() and drawn[49, 34:56].all() and drawn[30:50, 34].all() and drawn[30:50, 55].all()
    assert (draw_boxes(image, [None, box])[30, 40] == PALETTE[1]).all()   # colour follows the list position


def test_draw_boxes_clips_and_skips():
    image = np.zeros((64, 64, 3), np.uint8)
    out = draw_boxes(image, [(0.6, -0.2, 1.3, 0.3)], colours=[(9, 9, 9)])   # columns 38..63, rows 0..19 after clipping
    drawn = (out != 0).any(-1)
    expected = np.zeros((64, 64), bool); expected[[0, 19], 38:64] = True; expected[0:20, [38, 63]] = True
    np.testing.assert_array_equal(drawn, expected)
    np.testing.assert_array_equal(draw_boxes(image, [(1.2, 1.2, 1.5, 1.5), None]), image)
    np.testing.assert_array_equal(draw_boxes(image, None), image)


def test_bad_boxes_are_refused():
    image = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(VitronError, match="not normalised"):
        draw_boxes(image, [(10, 10, 30, 30)])
    with pytest.raises(VitronError, match="x1 > x2"):
        draw_boxes(image, [(0.6, 0.1, 0.2, 0.5)])
    with pytest.raises(VitronError, match="must be 4 numbers"):
        draw_boxes(image, [(0.1, 0.2, 0.3)])


# ---------------------------------------------------------------- error messages for shapes

def test_image_shape_error_message():
    with pytest.raises(VitronError) as info:
        mask_overlay(np.zeros((64, 64)), None)
    assert "image must be H x W x 3 uint8" in str(info.value) and "got shape (64, 64) float64" in str(info.value)
    with pytest.raises(VitronError, match=r"got shape \(64, 64, 4\) uint8"):
        draw_boxes(np.zeros((64, 64, 4), np.uint8), None)


def test_mask_shape_error_message():
    with pytest.raises(VitronError) as info:
        mask_overlay(np.zeros((64, 64, 3), np.uint8), np.zeros((3, 32, 32), bool))
    assert "got 3 masks of shape (32, 32) for an image of 64 x 64" in str(info.value)
    with pytest.raises(VitronError, match="must be bool"):
        mask_overlay(np.zeros((8, 8, 3), np.uint8), np.full((8, 8), 0.5))


def test_video_shape_error_messages():
    with pytest.raises(VitronError, match=r"frames must be T x H x W x 3 uint8.*got shape \(4, 8, 8\) uint8"):
        video_to_gif(np.zeros((4, 8, 8), np.uint8))
    frames, masks = moving_disk()
    with pytest.raises(VitronError, match="got masks for 3 frames, but the video has 5 frames"):
        show_video(frames, masks=masks[:3])
    with pytest.raises(VitronError, match=r"frame 0: got 1 mask of shape \(8, 8\) for an image of 24 x 24"):
        show_video(frames, masks=[np.zeros((8, 8), bool)] * 5)


# ---------------------------------------------------------------- matplotlib views

def test_show_image_axes():
    image, masks = scene()
    ax = show_image(image, boxes=[(0.1, 0.1, 0.4, 0.5), None], masks=masks, labels=["disk", None], title="t")
    assert len(ax.patches) == 1 and [t.get_text() for t in ax.texts] == ["disk"]
    assert ax.get_title() == "t" and list(ax.get_xticks()) == [] and list(ax.get_yticks()) == []
    with pytest.raises(VitronError, match="got 1 labels for 2 boxes"):
        show_image(image, boxes=[None, None], labels=["x"])


def test_show_images_and_video_layout():
    image, _ = scene()
    fig = show_images([image] * 7, titles=[str(i) for i in range(7)], ncols=3)
    assert len(fig.axes) == 9 and [ax.get_title() for ax in fig.axes[:7]] == [str(i) for i in range(7)]
    with pytest.raises(VitronError, match="use show_image"):
        show_images(image)
    frames, masks = moving_disk()
    boxes = [None, (0.1, 0.3, 0.4, 0.7), None, None, None]
    fig = show_video(frames, masks=masks, boxes=boxes, title="moving")
    assert [ax.get_title() for ax in fig.axes] == ["f0", "f1", "f2", "f3", "f4"]
    assert [len(ax.patches) for ax in fig.axes] == [0, 1, 0, 0, 0]


def test_fig_to_array_renders_pixels():
    fig, ax = plt.subplots(figsize=(2, 1), dpi=50)
    show_image(np.full((8, 16, 3), (10, 200, 30), np.uint8), ax=ax)
    fig.subplots_adjust(0, 0, 1, 1)
    pixels = fig_to_array(fig)
    assert pixels.shape == (50, 100, 3) and pixels.dtype == np.uint8
    assert pixels[25, 50].tolist() == [10, 200, 30]
    with pytest.raises(VitronError, match="pass ax.figure"):
        fig_to_array(ax)


# ---------------------------------------------------------------- GIF, PNG, data URIs, HTML

def test_gif_frames_size_timing_and_pixels(tmp_path):
    frames, _ = moving_disk()
    path = tmp_path / "sub" / "disk.gif"
    data = video_to_gif(frames, path=path, fps=5, scale=3)
    assert path.read_bytes() == data and os.listdir(path.parent) == ["disk.gif"]   # no temp file left
    with Image.open(io.BytesIO(data)) as gif:
        assert gif.format == "GIF" and gif.n_frames == 5 and gif.size == (24 * 3, 24 * 3)
        assert gif.info["loop"] == 0 and gif.info["duration"] == 200
        for t in range(5):
            gif.seek(t)
            np.testing.assert_array_equal(np.asarray(gif.convert("RGB"))[::3, ::3], frames[t])


def test_gif_merges_identical_frames_keeping_total_time():
    frames = np.full((3, 8, 8, 3), 128, np.uint8)
    with Image.open(io.BytesIO(video_to_gif(frames, fps=4, scale=1))) as gif:
        assert gif.n_frames == 1 and gif.info["duration"] == 750


def test_png_and_data_uri_round_trip():
    image, _ = scene()
    png = image_to_png_bytes(image, scale=2)
    uri = data_uri(png)
    assert uri.startswith("data:image/png;base64,")
    assert base64.b64decode(uri.split(",", 1)[1]) == png
    with Image.open(io.BytesIO(png)) as decoded:
        assert decoded.size == (160, 96)
        np.testing.assert_array_equal(np.asarray(decoded)[::2, ::2], image)
    assert data_uri(b"GIF89a", "image/gif") == "data:image/gif;base64,R0lGODlh"
    with pytest.raises(VitronError, match="data must be bytes"):
        data_uri("not bytes")
    with pytest.raises(VitronError, match="mime must look like"):
        data_uri(b"x", "png")


def test_html_table_escapes_text_and_keeps_images():
    img = '<img src="data:image/png;base64,AAAA">'
    table = html_table([{"name": "<b>a & b</b>", "score": 0.123456, "picture": img},
                        {"name": "second", "extra": None}], title="R&D <gallery>")
    assert "<caption>R&amp;D &lt;gallery&gt;</caption>" in table
    assert "<th>name</th><th>score</th><th>picture</th><th>extra</th>" in table
    assert "<td>&lt;b&gt;a &amp; b&lt;/b&gt;</td>" in table and "<td>0.1235</td>" in table
    assert f"<td>{img}</td>" in table
    assert "<tr><td>second</td><td></td><td></td><td></td></tr>" in table
    assert table.count("<tr>") == 3
    with pytest.raises(VitronError, match="list of dicts"):
        html_table({"a": 1})
