"""Box geometry on float ``x1y1x2y2`` tensors.

Conventions follow MMDetection 2.x/3.x (``mmdet/structures/bbox/bbox_overlaps.py``): the width
of a box is ``x2 - x1`` with no ``+1``, and every ratio divides by ``max(denominator, eps)`` so
degenerate (zero-area) boxes give 0 rather than NaN.
"""
from typing import Sequence, Union

import numpy as np
import torch
from torch import Tensor

_MODES = ("iou", "iof", "giou")


def box_area(boxes: Tensor) -> Tensor:
    """Area ``(x2 - x1) * (y2 - y1)`` of ``boxes [..., 4]`` -> ``[...]``."""
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def bbox_overlaps(boxes1: Tensor, boxes2: Tensor, mode: str = "iou", is_aligned: bool = False,
                  eps: float = 1e-6) -> Tensor:
    """Pairwise overlap of ``boxes1 [..., N, 4]`` and ``boxes2 [..., M, 4]``.

    Returns ``[..., N, M]``, or ``[..., N]`` when ``is_aligned`` (then ``N == M`` and row i of
    ``boxes1`` is compared with row i of ``boxes2`` only). Leading batch dims must match.

    mode:
      - ``"iou"``: intersection / union
      - ``"iof"``: intersection / area of ``boxes1`` (intersection over foreground)
      - ``"giou"``: generalised IoU, ``iou - (enclosing - union) / enclosing``
    Denominators are clamped below at ``eps``, so degenerate boxes give 0, never NaN.
    """
    if mode not in _MODES:
        raise ValueError(f"bbox_overlaps: mode must be one of {_MODES}, got {mode!r}")
    if boxes1.shape[-1] != 4 or boxes2.shape[-1] != 4:
        raise ValueError("bbox_overlaps: boxes must have 4 coordinates in the last dim, got "
                         f"{tuple(boxes1.shape)} and {tuple(boxes2.shape)}")
    rows, cols = boxes1.shape[-2], boxes2.shape[-2]
    if is_aligned and rows != cols:
        raise ValueError(f"bbox_overlaps: is_aligned needs as many boxes1 as boxes2, got {rows} "
                         f"and {cols}")
    if not is_aligned:
        # [..., N, 1, 4] against [..., 1, M, 4]
        boxes1, boxes2 = boxes1[..., :, None, :], boxes2[..., None, :, :]

    area1, area2 = box_area(boxes1), box_area(boxes2)
    top_left = torch.maximum(boxes1[..., :2], boxes2[..., :2])
    bottom_right = torch.minimum(boxes1[..., 2:], boxes2[..., 2:])
    wh = (bottom_right - top_left).clamp(min=0)
    overlap = wh[..., 0] * wh[..., 1]

    union = area1 + area2 - overlap if mode != "iof" else area1.expand_as(overlap)
    eps_t = union.new_tensor(eps)
    union = torch.maximum(union, eps_t)
    ious = overlap / union
    if mode != "giou":
        return ious
    enclose_wh = (torch.maximum(boxes1[..., 2:], boxes2[..., 2:])
                  - torch.minimum(boxes1[..., :2], boxes2[..., :2])).clamp(min=0)
    enclose_area = torch.maximum(enclose_wh[..., 0] * enclose_wh[..., 1], eps_t)
    return ious - (enclose_area - union) / enclose_area


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """IoU matrix ``[N, M]`` of ``boxes1 [N, 4]`` and ``boxes2 [M, 4]`` (``bbox_overlaps`` iou)."""
    return bbox_overlaps(boxes1, boxes2, mode="iou")


def xyxy_to_xywh(boxes: Tensor) -> Tensor:
    """``[..., 4]`` ``(x1, y1, x2, y2)`` -> ``(x1, y1, w, h)`` with ``w = x2 - x1`` (COCO style)."""
    return torch.cat([boxes[..., :2], boxes[..., 2:] - boxes[..., :2]], dim=-1)


def xywh_to_xyxy(boxes: Tensor) -> Tensor:
    """``[..., 4]`` ``(x1, y1, w, h)`` -> ``(x1, y1, x1 + w, y1 + h)``."""
    return torch.cat([boxes[..., :2], boxes[..., :2] + boxes[..., 2:]], dim=-1)


def clip_boxes(boxes: Tensor, img_shape_hw: Union[Sequence[int], Tensor]) -> Tensor:
    """Clamp x to ``[0, W]`` and y to ``[0, H]``; ``boxes [..., 4k]``, ``img_shape_hw (H, W, ...)``.

    The bound is W (not W - 1), as MMDetection's coders clip to ``img_shape``.
    """
    height, width = float(img_shape_hw[0]), float(img_shape_hw[1])
    clipped = boxes.clone()
    clipped[..., 0::2] = boxes[..., 0::2].clamp(min=0, max=width)
    clipped[..., 1::2] = boxes[..., 1::2].clamp(min=0, max=height)
    return clipped


def rescale_boxes(boxes: Tensor, scale_factor: Union[Sequence[float], Tensor]) -> Tensor:
    """Map ``boxes [..., 4]`` back to the original image: divide x by w_scale and y by h_scale.

    ``scale_factor`` is ``(w_scale, h_scale)`` or MMDetection's
    ``(w_scale, h_scale, w_scale, h_scale)`` (new size / old size).
    """
    factor = torch.as_tensor(scale_factor, dtype=boxes.dtype, device=boxes.device).reshape(-1)
    if factor.numel() not in (2, 4):
        raise ValueError(f"rescale_boxes: scale_factor must have 2 or 4 values, got "
                         f"{factor.numel()}")
    w_scale, h_scale = factor[0], factor[1]
    return boxes / torch.stack([w_scale, h_scale, w_scale, h_scale])


def bbox_overlaps_np(boxes1: np.ndarray, boxes2: np.ndarray, use_legacy_coordinate: bool = False,
                     eps: float = 1e-6) -> np.ndarray:
    """IoU of float32 [n, 4] x [m, 4] xyxy numpy boxes -> float32 [n, m] (mmdet's numpy
    ``bbox_overlaps``, used by VOC evaluation and MinIoURandomCrop; legacy coordinates add 1 to
    every width and height)."""
    extra = np.float32(1.0 if use_legacy_coordinate else 0.0)
    b1 = np.asarray(boxes1, dtype=np.float32).reshape(-1, 4)
    b2 = np.asarray(boxes2, dtype=np.float32).reshape(-1, 4)
    area1 = (b1[:, 2] - b1[:, 0] + extra) * (b1[:, 3] - b1[:, 1] + extra)
    area2 = (b2[:, 2] - b2[:, 0] + extra) * (b2[:, 3] - b2[:, 1] + extra)
    inter_w = np.minimum(b1[:, None, 2], b2[None, :, 2]) - np.maximum(b1[:, None, 0], b2[None, :, 0])
    inter_h = np.minimum(b1[:, None, 3], b2[None, :, 3]) - np.maximum(b1[:, None, 1], b2[None, :, 1])
    overlap = np.maximum(inter_w + extra, 0) * np.maximum(inter_h + extra, 0)
    union = np.maximum(area1[:, None] + area2[None, :] - overlap, np.float32(eps))
    return overlap / union
