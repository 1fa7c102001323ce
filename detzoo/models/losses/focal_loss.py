"""Sigmoid focal loss (Lin et al., 2017), MMDetection's ``FocalLoss(use_sigmoid=True)``."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .reduction import weight_reduce_loss


def sigmoid_focal_loss(pred: torch.Tensor, target: torch.Tensor, gamma: float = 2.0,
                       alpha: float = 0.25) -> torch.Tensor:
    """Element-wise loss: pred [N, C] logits, target [N, C] in {0, 1} (or soft in [0, 1])."""
    prob = pred.sigmoid()
    target = target.type_as(pred)
    pt = (1 - prob) * target + prob * (1 - target)  # the probability of the wrong answer
    focal_weight = (alpha * target + (1 - alpha) * (1 - target)) * pt.pow(gamma)
    return F.binary_cross_entropy_with_logits(pred, target, reduction="none") * focal_weight


class FocalLoss(nn.Module):
    """pred [N, C] logits over the C foreground classes; target [N] labels in [0, C] where C is
    background (an all-zero row), or already one-hot [N, C].

    weight: [N] (per sample) or [N, C]; reduction 'mean' divides by ``avg_factor`` when given
    (RetinaNet: the number of positive anchors).
    """

    def __init__(self, use_sigmoid: bool = True, gamma: float = 2.0, alpha: float = 0.25,
                 reduction: str = "mean", loss_weight: float = 1.0):
        super().__init__()
        if not use_sigmoid:
            raise ValueError("FocalLoss: only the sigmoid form is implemented (use_sigmoid=True)")
        self.use_sigmoid = use_sigmoid
        self.gamma = gamma
        self.alpha = alpha
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor, weight: Optional[torch.Tensor] = None,
                avg_factor: Optional[float] = None, reduction_override: Optional[str] = None) -> torch.Tensor:
        reduction = reduction_override or self.reduction
        if target.dim() == 1:
            num_classes = pred.shape[1]
            onehot = pred.new_zeros(pred.shape)
            fg = (target >= 0) & (target < num_classes)
            onehot[fg.nonzero(as_tuple=True)[0], target[fg]] = 1.0
            target = onehot
        loss = sigmoid_focal_loss(pred, target, self.gamma, self.alpha)
        if weight is not None and weight.dim() == 1:
            weight = weight.reshape(-1, 1)
        return self.loss_weight * weight_reduce_loss(loss, weight, reduction, avg_factor)
