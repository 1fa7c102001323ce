"""draw_detections / draw_ground_truth touch only the box, its label and its mask."""
import os

import cv2
import numpy as np
import pytest
import torch

from detzoo.errors import DataError
from detzoo.structures import DetResult
from detzoo.visualization import (draw_detections, draw_ground_truth, get_color,
                                  imwrite_atomic)

NAMES = ["person", "bicycle", "car", "dog"]


def _one(box, label=3, score=0.9, mask=None):
    return DetResult(torch.tensor([box], dtype=torch.float32), torch.tensor([score]),
                     torch.tensor([label]), None if mask is None else torch.from_numpy(mask[None]))


def _changed(before, after):
    return np.any(before != after, axis=2)


def test_one_box_colours_its_edges_and_leaves_the_rest_black():
    img = np.zeros((300, 400, 3), np.uint8)
    x1, y1, x2, y2 = 100, 120, 260, 250
    out = draw_detections(img, _one([x1, y1, x2, y2]), NAMES, thickness=2)
    assert not img.any()  # input untouched
    color = np.array(get_color(3), np.uint8)
    # every edge (away from the label above the top-left corner) carries the class colour
    for y, x in [(y2, 180), (200, x1), (200, x2), (y1, x2 - 5), (y2, x1 + 3)]:
        assert np.array_equal(out[y, x], color), (y, x)

    changed = _changed(img, out)
    ys, xs = np.nonzero(changed)
    t = 2  # changes stay within the box grown by the line thickness ...
    inside_box = (xs >= x1 - t) & (xs <= x2 + t) & (ys >= y1 - t) & (ys <= y2 + t)
    # ... or in the label, which sits right above the box starting at its left edge
    in_label = (ys < y1) & (ys >= y1 - 30) & (xs >= x1) & (xs <= x1 + 150)
    assert np.all(inside_box | in_label)
    assert in_label.sum() > 50  # the label is really drawn
    # the interior and everything far away stay black
    assert not out[y1 + 3:y2 - 2, x1 + 3:x2 - 2].any()
    assert not out[:, x2 + 3:].any() and not out[y2 + 3:].any() and not out[:, :x1 - 2].any()


def test_label_background_is_the_class_colour_and_grows_with_image_size():
    def label_height(size):
        img = np.zeros((size, size, 3), np.uint8)
        y1 = size // 2
        out = draw_detections(img, _one([size // 4, y1, size // 2, size * 3 // 4], label=0),
                              NAMES)
        above = _changed(img, out)[:y1 - 2]
        rows = np.nonzero(above.any(1))[0]
        colored = np.all(out[:y1 - 2] == np.array(get_color(0), np.uint8), axis=2)
        assert colored.sum() > 0.3 * above.sum()  # mostly filled background, not text
        return rows.max() - rows.min() + 1

    small, large = label_height(160), label_height(1600)
    assert 8 <= small < 25 and large > 2.5 * small


def test_box_at_the_top_border_keeps_its_label_inside_the_image():
    img = np.zeros((200, 200, 3), np.uint8)
    out = draw_detections(img, _one([20, 0, 150, 120]), NAMES)
    changed = _changed(img, out)
    assert changed[2:12, 25:60].any()  # label drawn inside the box, under its top edge
    ys, xs = np.nonzero(changed)
    assert ys.max() <= 122 and xs.max() <= 152


def test_score_threshold_is_strict():
    img = np.full((100, 100, 3), 40, np.uint8)
    result = DetResult(torch.tensor([[10.0, 10, 50, 50], [60, 60, 90, 90]]),
                       torch.tensor([0.3, 0.29]), torch.tensor([0, 1]))
    assert np.array_equal(draw_detections(img, result, NAMES, score_thr=0.3), img)
    out = draw_detections(img, result, NAMES, score_thr=0.295)
    assert _changed(img, out)[10:51, 10:51].any() and not _changed(img, out)[55:].any()


def test_mask_is_blended_in_the_class_colour():
    img = np.zeros((200, 200, 3), np.uint8)
    mask = np.zeros((200, 200), bool)
    mask[80:150, 60:130] = True
    out = draw_detections(img, _one([40, 60, 180, 170], label=2, mask=mask), NAMES,
                          mask_alpha=0.5)
    expected = np.rint(np.array(get_color(2), np.float64) * 0.5).astype(np.uint8)
    assert np.all(out[90:140, 70:120] == expected)
    assert not out[155:165, 50:170].any()  # inside the box, outside the mask: untouched
    assert not out[100:140, 135:175].any()
    assert not out[:, 185:].any()


def test_draw_ground_truth_boxes():
    img = np.zeros((120, 160, 3), np.uint8)
    out = draw_ground_truth(img, np.array([[30, 40, 90, 100]], np.float32), [1], NAMES)
    assert np.array_equal(out[100, 60], np.array(get_color(1), np.uint8))
    assert np.array_equal(out[70, 90], np.array(get_color(1), np.uint8))
    assert not out[45:96, 35:86].any() and not out[:, 95:].any()
    with pytest.raises(DataError, match="2 ground-truth boxes but 1 labels"):
        draw_ground_truth(img, np.zeros((2, 4)), [1], NAMES)


def test_bad_image_is_rejected():
    with pytest.raises(DataError, match="HxWx3 uint8"):
        draw_detections(np.zeros((10, 10), np.float32), DetResult.empty(), NAMES)


def test_imwrite_atomic(tmp_path):
    img = np.random.RandomState(0).randint(0, 256, (30, 40, 3), dtype=np.uint8)
    path = tmp_path / "a" / "b" / "vis.png"
    imwrite_atomic(str(path), img)
    assert np.array_equal(cv2.imread(str(path)), img)
    assert os.listdir(path.parent) == ["vis.png"]
    with pytest.raises(DataError, match="cannot encode"):
        imwrite_atomic(str(tmp_path / "vis.unknownext"), img)


def test_huge_and_non_finite_boxes_are_clipped_not_crashing():
    """An untrained model can decode boxes of 1e27 px (or inf): drawing clips them to the image
    border instead of overflowing cv2's int coordinates."""
    img = np.zeros((60, 80, 3), np.uint8)
    boxes = torch.tensor([[10.0, 5.0, 1e27, 1e30], [-1e28, float("inf"), 20.0, 30.0]])
    result = DetResult(boxes, torch.tensor([0.9, 0.8]), torch.tensor([1, 2]))
    out = draw_detections(img, result, NAMES, thickness=1)
    # box 1: its left edge is drawn at x=10 from y=5 down to the bottom of the image
    assert np.array_equal(out[40, 10], np.array(get_color(1), np.uint8))
    # box 2 (y1 = inf: clipped below the image): its right edge x=20 runs from y=30 down
    assert np.array_equal(out[45, 20], np.array(get_color(2), np.uint8))


def test_atomically_written_files_get_the_usual_permissions(tmp_path):
    # mkstemp's temp files are 0600; the renamed result must be what open() would have made
    umask = os.umask(0)
    os.umask(umask)
    path = tmp_path / "vis.png"
    imwrite_atomic(str(path), np.zeros((4, 4, 3), np.uint8))
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
