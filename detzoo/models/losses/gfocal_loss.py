"""Generalized Focal Loss (Li et al., 2020): Quality Focal Loss on a joint classification-IoU
score and Distribution Focal Loss on discretised box-side distributions (MMDetection
``QualityFocalLoss``, ``DistributionFocalLoss``)."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .reduction import weight_reduce_loss


def quality_focal_loss(pred: torch.Tensor, target: Tuple[torch.Tensor, torch.Tensor],
                       beta: float = 2.0) -> torch.Tensor:
    """pred [N, C] logits; target = (labels [N] in [0, C], C = background; scores [N] the IoU
    quality of each positive) -> [N], summed over classes.

    Every (sample, class) is a BCE towards 0 scaled by sigma^beta, except the positive's own class:
    BCE towards its score, scaled by |score - sigma|^beta.
    """
    labels, scores = target
    prob = pred.sigmoid()
    loss = F.binary_cross_entropy_with_logits(pred, torch.zeros_like(pred), reduction="none") * prob.pow(beta)
    num_classes = pred.shape[1]
    pos = ((labels >= 0) & (labels < num_classes)).nonzero(as_tuple=True)[0]
    if pos.numel() > 0:
        pos_labels = labels[pos].long()
        pos_scores = scores[pos].to(pred.dtype)
        focus = (pos_scores - prob[pos, pos_labels]).abs().pow(beta)
        loss[pos, pos_labels] = F.binary_cross_entropy_with_logits(
            pred[pos, pos_labels], pos_scores, reduction="none") * focus
    return loss.sum(dim=1)


def distribution_focal_loss(pred: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """pred [N, n + 1] logits over the bins 0..n; label [N] continuous targets in [0, n) ->
    [N]: cross-entropy towards the two neighbouring bins, weighted by linear interpolation."""
    left = label.long()
    right = left + 1
    weight_left = right.to(label.dtype) - label
    weight_right = label - left.to(label.dtype)
    return (F.cross_entropy(pred, left, reduction="none") * weight_left
            + F.cross_entropy(pred, right, reduction="none") * weight_right)


class QualityFocalLoss(nn.Module):
    """``forward(pred [N, C], (labels [N], scores [N]), weight [N], avg_factor)``.

    Only the sigmoid form on logits is implemented (``use_sigmoid=True``, ``activated=False``).
    """

    def __init__(self, use_sigmoid: bool = True, beta: float = 2.0, reduction: str = "mean",
                 loss_weight: float = 1.0, activated: bool = False):
        super().__init__()
        if not use_sigmoid or activated:
            raise ValueError("QualityFocalLoss: only use_sigmoid=True on logits (activated=False) is implemented")
        self.use_sigmoid = use_sigmoid
        self.beta = beta
        self.reduction = reduction
        self.loss_weight = loss_weight
        self.activated = activated

    def forward(self, pred: torch.Tensor, target: Tuple[torch.Tensor, torch.Tensor],
                weight: Optional[torch.Tensor] = None, avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> torch.Tensor:
        loss = quality_focal_loss(pred, target, self.beta)
        return self.loss_weight * weight_reduce_loss(loss, weight, reduction_override or self.reduction, avg_factor)


class DistributionFocalLoss(nn.Module):
    """``forward(pred [N, n + 1], target [N], weight [N], avg_factor)``."""

    def __init__(self, reduction: str = "mean", loss_weight: float = 1.0):
        super().__init__()
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor, weight: Optional[torch.Tensor] = None,
                avg_factor: Optional[float] = None, reduction_override: Optional[str] = None) -> torch.Tensor:
        loss = distribution_focal_loss(pred, target)
        return self.loss_weight * weight_reduce_loss(loss, weight, reduction_override or self.reduction, avg_factor)
