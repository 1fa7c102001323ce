"""Sigmoid focal loss (Lin et al., 2017), MMDetection's ``FocalLoss(use_sigmoid=True)``.

Follows mmdet ``models/losses/focal_loss.py`` (``py_sigmoid_focal_loss``, the path it takes on
CPU; its CUDA kernel computes the same formula): ``BCE(p, t) * (alpha t + (1 - alpha)(1 - t))
* |t - p|^gamma`` per element, then weights and ``weight_reduce_loss``.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from detzoo.errors import ConfigError
from .cross_entropy import labels_to_onehot
from .reduction import weight_reduce_loss


def sigmoid_focal_loss(pred: torch.Tensor, target: torch.Tensor, gamma: float = 2.0,
                       alpha: float = 0.25) -> torch.Tensor:
    """Element-wise loss: pred [N, C] logits, target [N, C] in {0, 1} (or soft in [0, 1])."""
    prob = pred.sigmoid()
    target = target.type_as(pred)
    pt = (1 - prob) * target + prob * (1 - target)  # the probability of the wrong answer
    focal_weight = (alpha * target + (1 - alpha) * (1 - target)) * pt.pow(gamma)
    return F.binary_cross_entropy_with_logits(pred, target, reduction="none") * focal_weight


def focal_loss_with_prob(prob: torch.Tensor, target: torch.Tensor, gamma: float = 2.0,
                         alpha: float = 0.25) -> torch.Tensor:
    """As :func:`sigmoid_focal_loss` for probabilities already through a sigmoid (mmdet
    ``py_focal_loss_with_prob``, ``FocalLoss(activated=True)``)."""
    target = target.type_as(prob)
    pt = (1 - prob) * target + prob * (1 - target)
    focal_weight = (alpha * target + (1 - alpha) * (1 - target)) * pt.pow(gamma)
    return F.binary_cross_entropy(prob, target, reduction="none") * focal_weight


class FocalLoss(nn.Module):
    """pred [N, C] logits (probabilities with ``activated``) over the C foreground classes;
    target [N] labels in [0, C] where C is background (an all-zero row), or already [N, C].

    weight: [N] (per sample), [N, C], or [N * C] flattened per class; reduction 'mean' divides
    by ``avg_factor`` when given (RetinaNet: the number of positive anchors).
    """

    def __init__(self, use_sigmoid: bool = True, gamma: float = 2.0, alpha: float = 0.25,
                 reduction: str = "mean", loss_weight: float = 1.0, activated: bool = False):
        super().__init__()
        if not use_sigmoid:
            raise ConfigError("FocalLoss(use_sigmoid=False): only the sigmoid focal loss exists (as in MMDetection)")
        if reduction not in ("none", "mean", "sum"):
            raise ConfigError(f"FocalLoss reduction={reduction!r} must be 'none', 'mean' or 'sum'")
        self.use_sigmoid = use_sigmoid
        self.gamma = gamma
        self.alpha = alpha
        self.reduction = reduction
        self.loss_weight = loss_weight
        self.activated = activated

    def forward(self, pred: torch.Tensor, target: torch.Tensor, weight: Optional[torch.Tensor] = None,
                avg_factor: Optional[float] = None, reduction_override: Optional[str] = None) -> torch.Tensor:
        reduction = reduction_override or self.reduction
        if target.dim() == 1:
            target = labels_to_onehot(target, pred.shape[1], pred.dtype)
        loss_fn = focal_loss_with_prob if self.activated else sigmoid_focal_loss
        loss = loss_fn(pred, target, self.gamma, self.alpha)
        if weight is not None and weight.shape != loss.shape:
            if weight.shape[0] == loss.shape[0]:
                weight = weight.reshape(loss.shape[0], -1)  # [N] per sample -> [N, 1]
            else:  # per anchor and class, flattened (e.g. FSAF)
                if weight.numel() != loss.numel():
                    raise ValueError(f"FocalLoss: weight of shape {tuple(weight.shape)} fits neither the "
                                     f"{loss.shape[0]} samples nor the loss {tuple(loss.shape)}")
                weight = weight.reshape(loss.shape[0], -1)
        return self.loss_weight * weight_reduce_loss(loss, weight, reduction, avg_factor)
