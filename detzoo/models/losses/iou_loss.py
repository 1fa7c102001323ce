"""IoU-based box regression losses on decoded x1y1x2y2 boxes (MMDetection ``IoULoss``,
``GIoULoss``). Each box gives one loss value; ``weight`` is per box ([N], or [N, 4] averaged
over the last dim as the reference does)."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn

from detzoo.ops import bbox_overlaps

from .reduction import weight_reduce_loss

_IOU_MODES = ("linear", "square", "log")


def iou_loss(pred: torch.Tensor, target: torch.Tensor, mode: str = "log", eps: float = 1e-6) -> torch.Tensor:
    """pred, target [N, 4] -> [N]: ``1 - iou`` (linear), ``1 - iou**2`` (square) or ``-log(iou)``
    (log, the UnitBox loss), with iou clamped below at eps."""
    ious = bbox_overlaps(pred, target, is_aligned=True).clamp(min=eps)
    if mode == "linear":
        return 1 - ious
    if mode == "square":
        return 1 - ious ** 2
    return -ious.log()


def giou_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """pred, target [N, 4] -> [N]: ``1 - GIoU`` (Rezatofighi et al., 2019)."""
    return 1 - bbox_overlaps(pred, target, mode="giou", is_aligned=True, eps=eps)


class _BoxOverlapLoss(nn.Module):
    def __init__(self, eps: float, reduction: str, loss_weight: float):
        super().__init__()
        self.eps = eps
        self.reduction = reduction
        self.loss_weight = loss_weight

    def elementwise(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, pred: torch.Tensor, target: torch.Tensor, weight: Optional[torch.Tensor] = None,
                avg_factor: Optional[float] = None, reduction_override: Optional[str] = None) -> torch.Tensor:
        """pred, target [N, 4] boxes; weight [N] or [N, 4]."""
        reduction = reduction_override or self.reduction
        if weight is not None and not bool((weight > 0).any()) and reduction != "none":
            # nothing to learn from: a zero that keeps the graph connected
            return (pred * (weight[:, None] if weight.dim() == 1 else weight)).sum()
        if weight is not None and weight.dim() > 1:
            weight = weight.mean(-1)
        loss = self.elementwise(pred, target)
        return self.loss_weight * weight_reduce_loss(loss, weight, reduction, avg_factor)


class IoULoss(_BoxOverlapLoss):
    """``mode``: "log" (default, ``-log IoU``), "linear" (``1 - IoU``) or "square"; the old flag
    ``linear=True`` means mode "linear"."""

    def __init__(self, linear: bool = False, eps: float = 1e-6, reduction: str = "mean",
                 loss_weight: float = 1.0, mode: str = "log"):
        super().__init__(eps, reduction, loss_weight)
        if linear:
            mode = "linear"
        if mode not in _IOU_MODES:
            raise ValueError(f"IoULoss: mode must be one of {_IOU_MODES}, got {mode!r}")
        self.mode = mode

    def elementwise(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return iou_loss(pred, target, self.mode, self.eps)


class GIoULoss(_BoxOverlapLoss):
    """``1 - GIoU`` per box."""

    def __init__(self, eps: float = 1e-6, reduction: str = "mean", loss_weight: float = 1.0):
        super().__init__(eps, reduction, loss_weight)

    def elementwise(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return giou_loss(pred, target, self.eps)
