"""L1 and smooth-L1 box regression losses."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn

from .reduction import weight_reduce_loss


class _ElementwiseRegressionLoss(nn.Module):
    """pred, target [N, 4] (deltas or boxes) -> weighted, reduced ``elementwise(pred - target)``."""

    def __init__(self, reduction: str = "mean", loss_weight: float = 1.0):
        super().__init__()
        self.reduction = reduction
        self.loss_weight = loss_weight

    def elementwise(self, diff: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, pred: torch.Tensor, target: torch.Tensor, weight: Optional[torch.Tensor] = None,
                avg_factor: Optional[float] = None, reduction_override: Optional[str] = None) -> torch.Tensor:
        if target.numel() == 0:
            return pred.sum() * 0  # keeps the graph connected when nothing is positive
        loss = self.elementwise(pred - target)
        return self.loss_weight * weight_reduce_loss(loss, weight, reduction_override or self.reduction, avg_factor)


class L1Loss(_ElementwiseRegressionLoss):
    """|pred - target|."""

    def elementwise(self, diff: torch.Tensor) -> torch.Tensor:
        return diff.abs()


class SmoothL1Loss(_ElementwiseRegressionLoss):
    """Huber-style loss: 0.5 x^2 / beta below beta, |x| - 0.5 beta above."""

    def __init__(self, beta: float = 1.0, reduction: str = "mean", loss_weight: float = 1.0):
        super().__init__(reduction, loss_weight)
        self.beta = beta

    def elementwise(self, diff: torch.Tensor) -> torch.Tensor:
        diff = diff.abs()
        return torch.where(diff < self.beta, 0.5 * diff * diff / self.beta, diff - 0.5 * self.beta)
