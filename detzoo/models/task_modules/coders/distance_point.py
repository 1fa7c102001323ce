"""Boxes as distances from a point to the four sides (MMDetection ``DistancePointBBoxCoder``,
``distance2bbox`` / ``bbox2distance``), used by FCOS and GFL."""
from __future__ import annotations

from typing import Optional, Sequence

import torch


def distance2bbox(points: torch.Tensor, distance: torch.Tensor,
                  max_shape: Optional[Sequence[int]] = None) -> torch.Tensor:
    """points [N, 2+] (x, y, ...), distance [N, 4] (left, top, right, bottom) -> boxes [N, 4].

    max_shape: (h, w, ...) of the image; x is clamped to [0, w] and y to [0, h].
    """
    x, y = points[..., 0], points[..., 1]
    boxes = torch.stack([x - distance[..., 0], y - distance[..., 1],
                         x + distance[..., 2], y + distance[..., 3]], dim=-1)
    if max_shape is not None:
        h, w = max_shape[0], max_shape[1]
        upper = boxes.new_tensor([w, h, w, h])
        boxes = torch.minimum(boxes.clamp(min=0), upper)
    return boxes


def bbox2distance(points: torch.Tensor, boxes: torch.Tensor, max_dis: Optional[float] = None,
                  eps: float = 0.1) -> torch.Tensor:
    """points [N, 2+], boxes [N, 4] -> distances [N, 4] (left, top, right, bottom), clamped to
    [0, max_dis - eps] when max_dis is given (GFL: the last bin of the distribution)."""
    x, y = points[..., 0], points[..., 1]
    distance = torch.stack([x - boxes[..., 0], y - boxes[..., 1], boxes[..., 2] - x, boxes[..., 3] - y],
                           dim=-1)
    if max_dis is not None:
        distance = distance.clamp(min=0, max=max_dis - eps)
    return distance


class DistancePointBBoxCoder:
    """``encode(points, gt, max_dis, eps) -> distances``; ``decode(points, distances, max_shape)
    -> boxes`` (clipped to max_shape when ``clip_border``)."""

    def __init__(self, clip_border: bool = True):
        self.clip_border = clip_border

    def encode(self, points: torch.Tensor, gt_bboxes: torch.Tensor, max_dis: Optional[float] = None,
               eps: float = 0.1) -> torch.Tensor:
        return bbox2distance(points, gt_bboxes, max_dis, eps)

    def decode(self, points: torch.Tensor, pred_bboxes: torch.Tensor,
               max_shape: Optional[Sequence[int]] = None) -> torch.Tensor:
        return distance2bbox(points, pred_bboxes, max_shape if self.clip_border else None)
