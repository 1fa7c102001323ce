"""YOLO box coding (MMDetection ``YOLOBBoxCoder``, mmdet/models/task_modules/coders/
yolo_bbox_coder.py).

A box is encoded against an anchor of stride s as
``tx = (gx - ax) / s + 0.5``, ``ty = (gy - ay) / s + 0.5`` (the centre's position inside the
anchor's cell, in [0, 1] for a centre in that cell, clamped to [eps, 1 - eps]) and
``tw = log(gw / aw)``, ``th = log(gh / ah)`` (ratios clamped below at eps). The head predicts
sigmoid-able logits for (tx, ty): :meth:`decode` takes the *already sigmoided* (tx, ty) and raw
(tw, th). Nothing is clipped to the image when decoding.
"""
from __future__ import annotations

from typing import Union

import torch


class YOLOBBoxCoder:
    def __init__(self, eps: float = 1e-6):
        self.eps = eps

    def encode(self, bboxes: torch.Tensor, gt_bboxes: torch.Tensor,
               stride: Union[torch.Tensor, float]) -> torch.Tensor:
        """bboxes (anchors) [N, 4], gt_bboxes [N, 4], stride: number or [N] -> targets [N, 4]
        = (tx, ty, tw, th)."""
        if bboxes.shape != gt_bboxes.shape or bboxes.shape[-1] != 4:
            raise ValueError(f"YOLOBBoxCoder.encode: anchors {tuple(bboxes.shape)} and boxes "
                             f"{tuple(gt_bboxes.shape)} must both be [N, 4]")
        anchor_ctr = (bboxes[..., :2] + bboxes[..., 2:]) * 0.5
        anchor_wh = bboxes[..., 2:] - bboxes[..., :2]
        gt_ctr = (gt_bboxes[..., :2] + gt_bboxes[..., 2:]) * 0.5
        gt_wh = gt_bboxes[..., 2:] - gt_bboxes[..., :2]
        if isinstance(stride, torch.Tensor) and stride.dim() == anchor_ctr.dim() - 1:
            stride = stride[..., None]
        ctr_target = ((gt_ctr - anchor_ctr) / stride + 0.5).clamp(self.eps, 1 - self.eps)
        wh_target = torch.log((gt_wh / anchor_wh).clamp(min=self.eps))
        return torch.cat([ctr_target, wh_target], dim=-1)

    def decode(self, bboxes: torch.Tensor, pred_bboxes: torch.Tensor,
               stride: Union[torch.Tensor, float]) -> torch.Tensor:
        """bboxes (anchors) [..., 4], pred_bboxes [..., 4] = (sigmoid(tx), sigmoid(ty), tw, th),
        stride: number or a tensor broadcastable to [..., 1] -> boxes [..., 4] (x1y1x2y2)."""
        if pred_bboxes.shape[-1] != 4 or bboxes.shape[-1] != 4:
            raise ValueError(f"YOLOBBoxCoder.decode: anchors {tuple(bboxes.shape)} and predictions "
                             f"{tuple(pred_bboxes.shape)} must end in 4")
        ctr = (bboxes[..., :2] + bboxes[..., 2:]) * 0.5 + (pred_bboxes[..., :2] - 0.5) * stride
        half_wh = (bboxes[..., 2:] - bboxes[..., :2]) * 0.5 * pred_bboxes[..., 2:].exp()
        return torch.cat([ctr - half_wh, ctr + half_wh], dim=-1)

    def __repr__(self) -> str:
        return f"YOLOBBoxCoder(eps={self.eps})"
