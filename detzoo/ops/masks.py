"""Instance-mask ops of Mask R-CNN: pasting RoI masks into the image and cropping ground truth.

``paste_masks_in_image`` reproduces MMDetection's ``_do_paste_mask`` (mmdet
``roi_heads/mask_heads/fcn_mask_head.py``, a Detectron2 port) on its CPU path, where every box is
pasted on its own with ``skip_empty=True``: box ``(x1, y1, x2, y2)`` only writes the integer
region ``[max(floor(x1) - 1, 0), min(ceil(x2) + 1, W))`` (same for y) and the rest of its
output stays 0. Inside, pixel centre ``x + 0.5`` maps to ``g = (x + 0.5 - x1) / (x2 - x1) * 2 - 1``
(infinite values, from zero-size boxes, become 0) and the mask is read with
``F.grid_sample(align_corners=False, padding_mode='zeros')``, i.e. at mask column
``(g + 1) * w / 2 - 0.5`` with bilinear weights and out-of-range taps counting as 0.

Both the grid and the zero padding are separable in x and y, so one box's output is
``Wy @ mask @ Wx^T`` with ``Wy [H, h]`` / ``Wx [W, w]`` holding at most two weights per row (rows
outside the region are 0); the result equals ``grid_sample``'s up to float rounding (~1e-7) and
costs a fraction of it. Boxes of similar region size are batched in chunks that share one window
shape (their regions padded to the chunk's largest, placed inside the image), so the work scales
with the boxes' area rather than with N * H * W; the chunk buffers are allocated once per call.

GPU MMDetection pastes without ``skip_empty``: that changes probabilities in the ring just outside
large boxes, where they are below half the box's edge value, so masks thresholded at >= 0.5 agree.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np
import torch
from pycocotools import mask as mask_utils
from torch import Tensor

from .roi_align import roi_align

# Window pixels (boxes x rows x cols) per chunk of several boxes; a single box may exceed it.
_CHUNK_ELEMENTS = 1 << 20
# Boxes whose region is larger are pasted alone, by slicing: batching them saves less in per-call
# overhead than writing through a flat index (two 8-byte passes per pixel) costs.
_ALONE_AREA = 1 << 16


def _regions(boxes: Tensor, img_h: int, img_w: int, skip_empty: bool) -> np.ndarray:
    """``[5, N]`` int64 per box: ``x0, y0, x1, y1`` of the pixels it fills (MMDetection's CPU path
    with skip_empty, else the whole image) and 1 where the box has zero width or height."""
    if skip_empty:
        x0 = (boxes[:, 0].floor() - 1).clamp(min=0)
        y0 = (boxes[:, 1].floor() - 1).clamp(min=0)
        x1 = (boxes[:, 2].ceil() + 1).clamp(max=img_w)
        y1 = (boxes[:, 3].ceil() + 1).clamp(max=img_h)
    else:
        x0 = y0 = torch.zeros_like(boxes[:, 0])
        x1, y1 = torch.full_like(x0, img_w), torch.full_like(x0, img_h)
    degenerate = (boxes[:, 2] == boxes[:, 0]) | (boxes[:, 3] == boxes[:, 1])
    return torch.stack([x0, y0, x1, y1, degenerate.float()]).long().cpu().numpy()


def _axis_weights(pixels: Tensor, lo: Tensor, hi: Tensor, size: int, inside: Tensor) -> Tensor:
    """Bilinear ``grid_sample`` weights ``[k, L, size]`` along one axis.

    pixels: ``[k, L]`` integer pixel indices of the window; lo, hi: ``[k]`` box edges;
    inside: ``[k, L]`` bool, pixels in the box's region (others get an all-zero row).
    """
    grid = (pixels.float() + 0.5 - lo[:, None]) / (hi - lo)[:, None] * 2 - 1
    grid = torch.where(torch.isinf(grid), torch.zeros_like(grid), grid)
    # Unnormalisation as in ATen's CPU grid sampler (align_corners=False); a pixel outside the
    # region is sent where no tap reaches the mask.
    source = torch.where(inside, (grid + 1) * (size / 2) - 0.5, torch.full_like(grid, -2.0))
    # Bilinear weight of mask index j is the tent max(0, 1 - |source - j|): the two neighbours of
    # the source get 1 - frac and frac, indices outside [0, size) are the zero padding, and a
    # NaN source (0/0 in the grid) gives a NaN row, as grid_sample returns NaN there.
    taps = torch.arange(size, device=pixels.device, dtype=source.dtype)
    return (1 - (source[..., None] - taps).abs()).clamp_(min=0)


def _plan_chunks(heights: np.ndarray, widths: np.ndarray) -> List[np.ndarray]:
    """Group boxes (by ascending region area) so that each chunk's padded window stays within
    the element budget and at most about twice the chunk's real area; large boxes go alone."""
    area = heights * widths
    order = np.argsort(area, kind="stable")
    alone = int(np.searchsorted(area[order], _ALONE_AREA, side="right"))
    chunks, start = [order[i:i + 1] for i in range(alone, len(order))], 0
    order = order[:alone]
    while start < len(order):
        ids = order[start:]
        count = np.arange(1, len(ids) + 1)
        padded = count * np.maximum.accumulate(heights[ids]) * np.maximum.accumulate(widths[ids])
        fits = (padded <= _CHUNK_ELEMENTS) & (padded <= 2 * np.cumsum(area[ids]) + 4096)
        stop = max(1, int(np.argmin(fits)) if not fits.all() else len(ids))
        chunks.append(ids[:stop])
        start += stop
    return chunks


def paste_masks_in_image(mask_probs: Tensor, boxes: Tensor, img_h: int, img_w: int,
                         threshold: Optional[float] = 0.5, skip_empty: bool = True) -> Tensor:
    """Paste RoI masks ``mask_probs [N, h, w]`` into an ``img_h x img_w`` image.

    Args:
        boxes: ``[N, 4]`` xyxy in pixels of the target image.
        threshold: output ``mask >= threshold`` as bool; None returns float32 probabilities.
        skip_empty: MMDetection's CPU path (fill only each box's integer region, see the module
            docstring); False samples the whole image (its GPU path).
    Returns:
        ``[N, img_h, img_w]`` bool (threshold given) or float32, on ``mask_probs.device``.
    """
    if mask_probs.dim() != 3 or boxes.dim() != 2 or boxes.shape[1] < 4 or boxes.shape[0] != mask_probs.shape[0]:
        raise ValueError(f"paste_masks_in_image: expected mask_probs [N, h, w] and boxes [N, 4], got "
                         f"{tuple(mask_probs.shape)} and {tuple(boxes.shape)}")
    img_h, img_w = int(img_h), int(img_w)
    num, mask_h, mask_w = mask_probs.shape
    device = mask_probs.device
    out = torch.zeros(num, img_h, img_w, device=device,
                      dtype=torch.bool if threshold is not None else torch.float32)
    if num == 0 or img_h == 0 or img_w == 0:
        return out
    probs = mask_probs.detach().float()
    # MMDetection computes the grid in float32 (pixel centres are float32 aranges).
    boxes = boxes[:, :4].detach().to(device=device, dtype=torch.float32)
    regions = _regions(boxes, img_h, img_w, skip_empty)
    x0, y0, x1, y1, nan_prone = regions
    heights, widths = np.maximum(y1 - y0, 0), np.maximum(x1 - x0, 0)
    nonempty = np.flatnonzero(heights * widths > 0)
    chunks = [nonempty[c] for c in _plan_chunks(heights[nonempty], widths[nonempty])]
    if not chunks:
        return out
    windows = [(ids, int(heights[ids].max()), int(widths[ids].max())) for ids in chunks]
    # One set of buffers for every chunk: fresh multi-MB tensors per chunk would be mapped and
    # page-faulted anew each time, which costs more than the arithmetic.
    largest = max(len(ids) * win_h * win_w for ids, win_h, win_w in windows)
    values_buffer = torch.empty(largest, device=device)
    binary_buffer = torch.empty(largest, device=device, dtype=torch.bool) if threshold is not None else None
    largest_multi = max([len(ids) * win_h * win_w for ids, win_h, win_w in windows if len(ids) > 1], default=0)
    index_buffer = torch.empty(largest_multi, device=device, dtype=torch.long)
    flat_out = out.view(-1)
    for ids_np, win_h, win_w in windows:
        count, size = len(ids_np), len(ids_np) * win_h * win_w
        # Windows start early enough to fit in the image; the extra pixels lie outside the
        # region, where the output is 0 anyway, so no two boxes' writes overlap.
        top = np.minimum(y0[ids_np], img_h - win_h)
        left = np.minimum(x0[ids_np], img_w - win_w)
        ids, region = torch.from_numpy(ids_np).to(device), torch.from_numpy(regions[:4, ids_np]).to(device)
        rows = torch.from_numpy(top).to(device)[:, None] + torch.arange(win_h, device=device)
        cols = torch.from_numpy(left).to(device)[:, None] + torch.arange(win_w, device=device)
        inside_y = (rows >= region[1, :, None]) & (rows < region[3, :, None])
        inside_x = (cols >= region[0, :, None]) & (cols < region[2, :, None])
        box = boxes[ids]
        weight_y = _axis_weights(rows, box[:, 1], box[:, 3], mask_h, inside_y)
        weight_x = _axis_weights(cols, box[:, 0], box[:, 2], mask_w, inside_x)
        values = values_buffer[:size].view(count, win_h, win_w)
        torch.bmm(weight_y, torch.bmm(probs[ids], weight_x.transpose(1, 2)), out=values)
        if nan_prone[ids_np].any():
            # A NaN weight row spreads along the whole window row (or column); MMDetection only
            # samples the region, so the rest stays 0.
            values.masked_fill_(~(inside_y[:, :, None] & inside_x[:, None, :]), 0)
        if threshold is not None:
            values = torch.ge(values, threshold, out=binary_buffer[:size].view(count, win_h, win_w))
        if count == 1:
            out[int(ids_np[0]), top[0]:top[0] + win_h, left[0]:left[0] + win_w] = values[0]
        else:
            flat_index = index_buffer[:size].view(count, win_h, win_w)
            torch.add(((ids[:, None] * img_h + rows) * img_w)[:, :, None], cols[:, None, :], out=flat_index)
            flat_out.index_copy_(0, flat_index.view(-1), values.view(-1))
    return out


def crop_and_resize_bitmaps(masks: Tensor, boxes: Tensor, gt_inds: Tensor, out_size: int) -> Tensor:
    """Binary training targets from bitmap masks (MMDetection ``BitmapMasks.crop_and_resize``).

    Args:
        masks: ``[n, H, W]`` uint8/bool ground-truth masks of one image.
        boxes: ``[P, 4]`` xyxy in mask pixels; gt_inds: ``[P]`` long index of each box's mask.
    Returns:
        ``[P, out_size, out_size]`` float32 of 0/1: RoIAlign (spatial_scale 1, adaptive sampling,
        aligned=True) of the mask over the box, then ``>= 0.5``; on ``boxes.device``.
    """
    num = boxes.shape[0]
    if num == 0:
        return boxes.new_zeros((0, out_size, out_size), dtype=torch.float32)
    features = masks.to(device=boxes.device, dtype=torch.float32)[:, None]
    # Each box reads its own mask as the "image" of a batch (MMDetection stacks one mask copy
    # per box instead; the pooled values are the same).
    rois = torch.cat([gt_inds.to(boxes.device, torch.float32)[:, None], boxes[:, :4].float()], dim=1)
    pooled = roi_align(features, rois, out_size, spatial_scale=1.0, sampling_ratio=0, aligned=True)
    return (pooled[:, 0] >= 0.5).float()


def crop_and_resize_polygons(polygons: Sequence[Sequence[np.ndarray]], boxes: Tensor, gt_inds: Tensor,
                             out_size: int) -> Tensor:
    """Binary training targets from polygon masks (MMDetection ``PolygonMasks.crop_and_resize``).

    Args:
        polygons: per instance, a list of float arrays ``[x0, y0, x1, y1, ...]`` (>= 3 points).
        boxes: ``[P, 4]`` xyxy; gt_inds: ``[P]`` long index of each box's instance.
    Returns:
        ``[P, out_size, out_size]`` float32 of 0/1 on ``boxes.device``: each polygon shifted by
        the box's top-left, scaled by ``out_size / max(box side, 1)`` (float32, as MMDetection)
        and rasterised by pycocotools (union of an instance's polygons).
    """
    num = boxes.shape[0]
    targets = np.zeros((num, out_size, out_size), dtype=np.float32)
    if num == 0:
        return torch.from_numpy(targets).to(boxes.device)
    boxes_np = boxes[:, :4].detach().cpu().numpy().astype(np.float32)
    inds = gt_inds.detach().cpu().numpy()
    sides = np.maximum(boxes_np[:, 2:] - boxes_np[:, :2], np.float32(1))
    scales = np.float32(out_size) / sides                     # [P, 2]: (w_scale, h_scale)
    selected = [polygons[i] for i in inds]
    counts = np.array([len(polys) for polys in selected])
    flat = [np.asarray(p, dtype=np.float32).reshape(-1, 2) for polys in selected for p in polys]
    if not flat:
        return torch.from_numpy(targets).to(boxes.device)
    lengths = [len(p) for p in flat]
    owner = np.repeat(np.repeat(np.arange(num), counts), lengths)
    points = (np.concatenate(flat) - boxes_np[owner, :2]) * scales[owner]
    pieces = np.split(points.reshape(-1), 2 * np.cumsum(lengths)[:-1])
    rles = mask_utils.frPyObjects(pieces, out_size, out_size)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    has_polygons = np.flatnonzero(counts > 0)
    merged = [rles[bounds[i]] if counts[i] == 1 else mask_utils.merge(rles[bounds[i]:bounds[i + 1]])
              for i in has_polygons]
    targets[has_polygons] = np.moveaxis(mask_utils.decode(merged), -1, 0)
    return torch.from_numpy(targets).to(boxes.device)
