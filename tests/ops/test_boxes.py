"""detzoo.ops.boxes against plain-Python float64 references and hand-worked values."""
import math

import pytest
import torch

from detzoo.ops.boxes import (bbox_overlaps, box_area, box_iou, clip_boxes, rescale_boxes,
                              xywh_to_xyxy, xyxy_to_xywh)


def _ref_overlap(a, b, mode, eps=1e-6):
    """MMDetection bbox_overlaps for one pair, in Python floats."""
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    w = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0)
    h = max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
    inter = w * h
    union = max(area_a if mode == "iof" else area_a + area_b - inter, eps)
    iou = inter / union
    if mode != "giou":
        return iou
    ew = max(max(a[2], b[2]) - min(a[0], b[0]), 0.0)
    eh = max(max(a[3], b[3]) - min(a[1], b[1]), 0.0)
    enclose = max(ew * eh, eps)
    return iou - (enclose - union) / enclose


def _random_boxes(n, generator, degenerate_every=5):
    xy = torch.rand(n, 2, generator=generator, dtype=torch.float64) * 50
    wh = torch.rand(n, 2, generator=generator, dtype=torch.float64) * 30
    wh[::degenerate_every, 0] = 0.0  # zero-width boxes
    return torch.cat([xy, xy + wh], dim=1)


@pytest.mark.parametrize("mode", ["iou", "iof", "giou"])
def test_bbox_overlaps_matches_reference(mode):
    g = torch.Generator().manual_seed(1)
    a, b = _random_boxes(23, g), _random_boxes(17, g)
    b[3] = a[4]  # an identical pair
    got = bbox_overlaps(a, b, mode=mode)
    assert got.shape == (23, 17)
    want = torch.tensor([[_ref_overlap(x, y, mode) for y in b.tolist()] for x in a.tolist()],
                        dtype=torch.float64)
    assert torch.allclose(got, want, atol=1e-12)
    assert not torch.isnan(got).any()
    if mode == "iou":
        assert got[4, 3] == pytest.approx(1.0)


@pytest.mark.parametrize("mode", ["iou", "iof", "giou"])
def test_bbox_overlaps_aligned_and_batched(mode):
    g = torch.Generator().manual_seed(2)
    a, b = _random_boxes(12, g), _random_boxes(12, g)
    got = bbox_overlaps(a, b, mode=mode, is_aligned=True)
    want = torch.tensor([_ref_overlap(x, y, mode) for x, y in zip(a.tolist(), b.tolist())],
                        dtype=torch.float64)
    assert got.shape == (12,)
    assert torch.allclose(got, want, atol=1e-12)
    batched = bbox_overlaps(torch.stack([a, b]), torch.stack([b, a]), mode=mode)
    assert batched.shape == (2, 12, 12)
    assert torch.allclose(batched[0], bbox_overlaps(a, b, mode=mode))
    assert torch.allclose(batched[1], bbox_overlaps(b, a, mode=mode))


def test_bbox_overlaps_hand_worked():
    a = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    b = torch.tensor([[5.0, 5.0, 15.0, 15.0]])
    # intersection 25, union 175, enclosing box 15 x 15 = 225
    assert bbox_overlaps(a, b).item() == pytest.approx(25 / 175)
    assert bbox_overlaps(a, b, mode="iof").item() == pytest.approx(25 / 100)
    assert bbox_overlaps(a, b, mode="giou").item() == pytest.approx(25 / 175 - 50 / 225)
    assert box_iou(a, b).item() == pytest.approx(25 / 175)
    # width is x2 - x1 (no +1): touching boxes do not overlap
    assert bbox_overlaps(a, torch.tensor([[10.0, 0.0, 20.0, 10.0]])).item() == 0.0


def test_degenerate_boxes_give_zero_not_nan():
    point = torch.tensor([[3.0, 3.0, 3.0, 3.0]])
    line = torch.tensor([[0.0, 3.0, 10.0, 3.0]])
    for mode in ("iou", "iof"):
        assert bbox_overlaps(point, point, mode=mode).item() == 0.0
        assert bbox_overlaps(line, point, mode=mode).item() == 0.0
    assert not math.isnan(bbox_overlaps(point, line, mode="giou").item())


def test_empty_inputs_keep_shapes():
    some = torch.rand(3, 4)
    empty = torch.zeros(0, 4)
    assert bbox_overlaps(empty, some).shape == (0, 3)
    assert bbox_overlaps(some, empty, mode="giou").shape == (3, 0)
    assert bbox_overlaps(empty, empty, is_aligned=True).shape == (0,)
    assert box_area(empty).shape == (0,)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="mode"):
        bbox_overlaps(torch.rand(2, 4), torch.rand(2, 4), mode="dice")
    with pytest.raises(ValueError, match="is_aligned"):
        bbox_overlaps(torch.rand(2, 4), torch.rand(3, 4), is_aligned=True)


def test_box_area_and_format_conversion():
    boxes = torch.tensor([[1.0, 2.0, 4.0, 8.0], [0.0, 0.0, 0.0, 5.0]])
    assert box_area(boxes).tolist() == [18.0, 0.0]
    xywh = xyxy_to_xywh(boxes)
    assert xywh.tolist() == [[1.0, 2.0, 3.0, 6.0], [0.0, 0.0, 0.0, 5.0]]
    assert torch.equal(xywh_to_xyxy(xywh), boxes)


def test_clip_boxes_uses_width_and_height_as_bounds():
    boxes = torch.tensor([[-5.0, -1.0, 120.0, 70.0], [10.0, 20.0, 30.0, 40.0]])
    clipped = clip_boxes(boxes, (60, 100, 3))  # H=60, W=100
    assert clipped.tolist() == [[0.0, 0.0, 100.0, 60.0], [10.0, 20.0, 30.0, 40.0]]
    # class-specific [N, 4k] boxes are clipped on every group of 4
    wide = torch.cat([boxes, boxes], dim=1)
    assert torch.equal(clip_boxes(wide, (60, 100)), torch.cat([clipped, clipped], dim=1))
    assert boxes[0, 0] == -5.0  # input untouched


def test_rescale_boxes_divides_by_w_and_h_scale():
    boxes = torch.tensor([[10.0, 20.0, 30.0, 40.0]])
    want = [[10.0 / 2.0, 20.0 / 4.0, 30.0 / 2.0, 40.0 / 4.0]]
    assert rescale_boxes(boxes, (2.0, 4.0, 2.0, 4.0)).tolist() == want
    assert rescale_boxes(boxes, torch.tensor([2.0, 4.0])).tolist() == want
    with pytest.raises(ValueError, match="scale_factor"):
        rescale_boxes(boxes, (1.0, 2.0, 3.0))
