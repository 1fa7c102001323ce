"""Mean squared error (YOLOv3's width/height loss)."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .reduction import weight_reduce_loss


class MSELoss(nn.Module):
    """Element-wise squared error, weighted then reduced (MMDetection ``MSELoss``)."""

    def __init__(self, reduction: str = "mean", loss_weight: float = 1.0):
        super().__init__()
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor, weight: Optional[torch.Tensor] = None,
                avg_factor: Optional[float] = None, reduction_override: Optional[str] = None) -> torch.Tensor:
        loss = F.mse_loss(pred, target, reduction="none")
        return self.loss_weight * weight_reduce_loss(loss, weight, reduction_override or self.reduction,
                                                     avg_factor)
