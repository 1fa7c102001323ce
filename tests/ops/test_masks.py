"""Mask ops against slow references written here: MMDetection's per-box CPU paste (torch's own
grid_sample on each box's integer region), a scalar RoIAlign, cv2 area resize and pycocotools."""
import math

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pycocotools import mask as mask_utils

from detzoo.ops import crop_and_resize_bitmaps, crop_and_resize_polygons, paste_masks_in_image

# pycocotools' decode warns under numpy 2 (its own code, not ours)
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def reference_paste(probs, boxes, img_h, img_w, skip_empty=True):
    """MMDetection ``_do_paste_mask`` called one box at a time (its CPU path)."""
    out = torch.zeros(len(probs), img_h, img_w)
    for i, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
        box = boxes[i]
        if skip_empty:
            x0_int, y0_int = max(math.floor(x1) - 1, 0), max(math.floor(y1) - 1, 0)
            x1_int, y1_int = min(math.ceil(x2) + 1, img_w), min(math.ceil(y2) + 1, img_h)
        else:
            x0_int, y0_int, x1_int, y1_int = 0, 0, img_w, img_h
        if x1_int <= x0_int or y1_int <= y0_int:
            continue
        ys = torch.arange(y0_int, y1_int, dtype=torch.float32) + 0.5
        xs = torch.arange(x0_int, x1_int, dtype=torch.float32) + 0.5
        gy = (ys - box[1]) / (box[3] - box[1]) * 2 - 1
        gx = (xs - box[0]) / (box[2] - box[0]) * 2 - 1
        gy[torch.isinf(gy)] = 0
        gx[torch.isinf(gx)] = 0
        grid = torch.stack([gx[None, :].expand(len(ys), -1), gy[:, None].expand(-1, len(xs))], dim=-1)
        sampled = F.grid_sample(probs[i][None, None].float(), grid[None], align_corners=False)
        out[i, y0_int:y1_int, x0_int:x1_int] = sampled[0, 0]
    return out


def random_boxes(gen, num, img_h, img_w):
    """Mixed boxes: ordinary, partly outside, sub-pixel, larger than the image, fully outside."""
    cx = torch.rand(num, generator=gen) * (img_w + 20) - 10
    cy = torch.rand(num, generator=gen) * (img_h + 20) - 10
    size = torch.rand(num, 2, generator=gen)
    kind = torch.arange(num) % 4
    scale = torch.tensor([15.0, 0.8, 3.0 * max(img_h, img_w), 40.0])[kind]
    w, h = size[:, 0] * scale + 0.05, size[:, 1] * scale + 0.05
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=1)


@pytest.mark.parametrize("mask_hw", [(28, 28), (7, 5)])
def test_paste_matches_per_box_grid_sample(mask_hw):
    gen = torch.Generator().manual_seed(0)
    img_h, img_w = 37, 53
    boxes = random_boxes(gen, 40, img_h, img_w)
    boxes = torch.cat([boxes, torch.tensor([[10.0, 5.0, 10.0, 20.0],     # zero width at an integer
                                            [20.5, 3.0, 20.5, 9.0],      # 0/0 -> a NaN column
                                            [60.0, 40.0, 70.0, 50.0],    # outside the image
                                            [-30.0, -30.0, -5.0, -2.0]])])
    probs = torch.rand(len(boxes), *mask_hw, generator=gen)
    ref = reference_paste(probs, boxes, img_h, img_w)
    got = paste_masks_in_image(probs, boxes, img_h, img_w, threshold=None)
    assert got.dtype == torch.float32 and got.shape == (len(boxes), img_h, img_w)
    assert torch.isnan(ref).any()
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=0, equal_nan=True)
    binary = paste_masks_in_image(probs, boxes, img_h, img_w, threshold=0.5)
    clear = (ref - 0.5).abs() > 1e-5
    assert binary.dtype == torch.bool
    assert torch.equal(binary[clear], (ref >= 0.5)[clear])
    # the big boxes really exercise skip_empty: whole-image sampling differs next to them
    full = reference_paste(probs, boxes, img_h, img_w, skip_empty=False)
    assert (full - ref).nan_to_num().abs().max() > 0.05
    torch.testing.assert_close(paste_masks_in_image(probs, boxes, img_h, img_w, None, skip_empty=False),
                               full, atol=1e-5, rtol=0, equal_nan=True)


def test_paste_hand_worked_constant_mask():
    # 2x2 mask of ones in box [2, 2, 6, 6]: along each axis the pixel centres 1.5 .. 6.5 read the
    # mask at -0.75, -0.25, 0.25, 0.75, 1.25, 1.75 -> 0.25, 0.75, 1, 1, 0.75, 0.25 (zero padding);
    # pixel 0 and 7 lie outside the region [floor(2) - 1, ceil(6) + 1).
    profile = torch.tensor([0, 0.25, 0.75, 1, 1, 0.75, 0.25, 0, 0, 0])
    probs = torch.ones(1, 2, 2)
    boxes = torch.tensor([[2.0, 2.0, 6.0, 6.0]])
    got = paste_masks_in_image(probs, boxes, 10, 10, threshold=None)[0]
    torch.testing.assert_close(got, profile[:, None] * profile[None, :], atol=1e-6, rtol=0)
    expected = torch.zeros(10, 10, dtype=torch.bool)
    expected[2:6, 2:6] = True                    # corners 0.75 * 0.75 = 0.5625 >= 0.5
    assert torch.equal(paste_masks_in_image(probs, boxes, 10, 10)[0], expected)


def test_paste_skip_empty_cuts_the_fade_of_a_big_box():
    # Box 20 px wide over a 2-column mask: each mask cell is 10 px, so the fade reaches ~5 px past
    # x2 = 20.2. Column 22 (centre 22.5) reads column 1.73 -> weight 0.27; it lies outside
    # [floor(0.2) - 1, ceil(20.2) + 1) = [0, 22), so the CPU path leaves it 0.
    probs = torch.ones(1, 2, 2)
    boxes = torch.tensor([[0.2, 0.0, 20.2, 10.0]])
    skip = paste_masks_in_image(probs, boxes, 12, 30, threshold=None)[0]
    full = paste_masks_in_image(probs, boxes, 12, 30, threshold=None, skip_empty=False)[0]
    assert abs(full[4, 22].item() - 0.27) < 1e-5 and skip[4, 22].item() == 0.0
    assert abs(skip[4, 21].item() - 0.37) < 1e-5


def test_paste_empty_and_many_boxes_in_small_chunks(monkeypatch):
    assert paste_masks_in_image(torch.zeros(0, 28, 28), torch.zeros(0, 4), 5, 7).shape == (0, 5, 7)
    import detzoo.ops.masks as masks_module

    monkeypatch.setattr(masks_module, "_CHUNK_ELEMENTS", 300)   # force many chunks
    gen = torch.Generator().manual_seed(1)
    boxes = random_boxes(gen, 30, 20, 24)
    probs = torch.rand(30, 6, 6, generator=gen)
    torch.testing.assert_close(paste_masks_in_image(probs, boxes, 20, 24, None),
                               reference_paste(probs, boxes, 20, 24), atol=1e-5, rtol=0)


def reference_roi_align(img, box, out):
    """Scalar mmcv RoIAlign (avg, aligned=True, adaptive sampling) of one single-channel image."""
    height, width = img.shape

    def bilinear(y, x):
        if y < -1 or y > height or x < -1 or x > width:
            return 0.0
        y, x = max(y, 0.0), max(x, 0.0)
        y0, x0 = int(y), int(x)
        if y0 >= height - 1:
            y0 = y1 = height - 1
            y = float(y0)
        else:
            y1 = y0 + 1
        if x0 >= width - 1:
            x0 = x1 = width - 1
            x = float(x0)
        else:
            x1 = x0 + 1
        ly, lx = y - y0, x - x0
        return ((1 - ly) * (1 - lx) * img[y0, x0] + (1 - ly) * lx * img[y0, x1]
                + ly * (1 - lx) * img[y1, x0] + ly * lx * img[y1, x1])

    x1, y1, x2, y2 = (c - 0.5 for c in box)
    bin_h, bin_w = (y2 - y1) / out, (x2 - x1) / out
    grid_h, grid_w = math.ceil((y2 - y1) / out), math.ceil((x2 - x1) / out)
    result = np.zeros((out, out))
    for ph in range(out):
        for pw in range(out):
            total = sum(bilinear(y1 + ph * bin_h + (iy + 0.5) * bin_h / grid_h,
                                 x1 + pw * bin_w + (ix + 0.5) * bin_w / grid_w)
                        for iy in range(grid_h) for ix in range(grid_w))
            result[ph, pw] = total / max(grid_h * grid_w, 1)
    return result


def test_crop_and_resize_bitmaps_matches_scalar_roi_align():
    rng = np.random.default_rng(0)
    masks = np.zeros((3, 30, 40), dtype=np.uint8)
    masks[0, 5:25, 8:30] = 1
    masks[1] = rng.random((30, 40)) > 0.5
    masks[2, 10:12, :] = 1
    boxes = torch.tensor([[6.3, 4.1, 31.7, 26.2], [0.0, 0.0, 40.0, 30.0], [3.2, 7.7, 17.9, 14.4],
                          [20.5, 9.25, 21.0, 13.5]])
    inds = torch.tensor([0, 1, 2, 1])
    got = crop_and_resize_bitmaps(torch.from_numpy(masks), boxes, inds, 7)
    assert got.dtype == torch.float32 and got.shape == (4, 7, 7)
    for i in range(4):
        ref = reference_roi_align(masks[inds[i]].astype(np.float64), boxes[i].tolist(), 7)
        clear = np.abs(ref - 0.5) > 1e-4
        np.testing.assert_array_equal(got[i].numpy()[clear], (ref >= 0.5)[clear].astype(np.float32))


def test_crop_and_resize_bitmaps_axis_aligned_equals_area_resize():
    # Box [4, 8, 60, 64] at out 28: bins of 2 px sampled exactly at the pixel centres, so each
    # target is the 2x2 block mean of the crop (cv2 INTER_AREA), thresholded at 0.5.
    rng = np.random.default_rng(1)
    mask = (rng.random((80, 70)) > 0.4).astype(np.uint8)
    got = crop_and_resize_bitmaps(torch.from_numpy(mask)[None], torch.tensor([[4.0, 8.0, 60.0, 64.0]]),
                                  torch.tensor([0]), 28)[0]
    area = cv2.resize(mask[8:64, 4:60].astype(np.float32), (28, 28), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(got.numpy(), (area >= 0.5).astype(np.float32))


def test_crop_and_resize_polygons_square_covering_box_is_all_ones():
    square = [[np.array([3.5, 2.0, 19.5, 2.0, 19.5, 11.0, 3.5, 11.0], dtype=np.float32)]]
    got = crop_and_resize_polygons(square, torch.tensor([[3.5, 2.0, 19.5, 11.0]]), torch.tensor([0]), 28)
    assert got.shape == (1, 28, 28) and bool((got == 1).all())


def test_crop_and_resize_polygons_quadrant_union_and_empty_instance():
    polygons = [
        [np.array([4, 4, 12, 4, 12, 12, 4, 12], dtype=np.float32)],
        [np.array([0, 0, 4, 0, 4, 4, 0, 4], dtype=np.float32),             # two parts: a union
         np.array([4, 4, 8, 4, 8, 8, 4, 8], dtype=np.float32)],
        [],                                                                 # no polygon left
    ]
    boxes = torch.tensor([[0.0, 0.0, 8.0, 8.0], [0.0, 0.0, 8.0, 8.0], [0.0, 0.0, 8.0, 8.0]])
    got = crop_and_resize_polygons(polygons, boxes, torch.tensor([0, 1, 2]), 28).numpy()
    quadrant = np.zeros((28, 28), dtype=np.float32)
    quadrant[14:, 14:] = 1                      # square [4, 12] seen through box [0, 8] x 3.5
    np.testing.assert_array_equal(got[0], quadrant)
    np.testing.assert_array_equal(got[1], quadrant + quadrant[::-1, ::-1])
    assert got[2].sum() == 0
    # a box narrower than one pixel is scaled as if it were 1 px wide (MMDetection's max(w, 1)):
    # the 0.25 px wide strip spans 0.25 * 28 = 7 of the 28 columns (14 if scaled by 28 / 0.5)
    strip = [[np.array([4, 4, 4.25, 4, 4.25, 12, 4, 12], dtype=np.float32)]]
    thin = crop_and_resize_polygons(strip, torch.tensor([[4.0, 4.0, 4.5, 12.0]]), torch.tensor([0]), 28)[0]
    expected = torch.zeros(28, 28)
    expected[:, :7] = 1
    assert torch.equal(thin, expected)


def test_polygon_targets_agree_with_bitmap_targets_of_their_rasterisation():
    rng = np.random.default_rng(2)
    height, width = 64, 80
    polygons, boxes, inds = [], [], []
    for k in range(6):
        cx, cy = rng.uniform(15, width - 15), rng.uniform(15, height - 15)
        angles = np.sort(rng.uniform(0, 2 * np.pi, 9))
        radii = rng.uniform(6, 14, 9)
        poly = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], 1).reshape(-1)
        polygons.append([poly.astype(np.float32)])
        for _ in range(3):
            jitter = rng.uniform(-3, 3, 4)
            xs, ys = poly[0::2], poly[1::2]
            boxes.append([xs.min() + jitter[0], ys.min() + jitter[1], xs.max() + jitter[2], ys.max() + jitter[3]])
            inds.append(k)
    bitmaps = np.stack([mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(p, height, width)))
                        for p in polygons])
    boxes, inds = torch.tensor(boxes, dtype=torch.float32), torch.tensor(inds)
    from_polygons = crop_and_resize_polygons(polygons, boxes, inds, 28)
    from_bitmaps = crop_and_resize_bitmaps(torch.from_numpy(bitmaps), boxes, inds, 28)
    assert from_polygons.sum() > 0.2 * from_polygons.numel()
    assert (from_polygons == from_bitmaps).float().mean() >= 0.95
