"""Softmax and sigmoid cross-entropy with MMDetection's label conventions."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from detzoo.errors import ConfigError

from .reduction import weight_reduce_loss


def labels_to_onehot(labels: torch.Tensor, num_classes: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """labels [N] in [0, num_classes] (num_classes = background) -> [N, num_classes] 0/1 rows,
    all-zero for background (MMDetection: one-hot over C + 1 classes, last column dropped)."""
    onehot = torch.zeros((labels.shape[0], num_classes), dtype=dtype, device=labels.device)
    fg = (labels >= 0) & (labels < num_classes)
    onehot[fg.nonzero(as_tuple=True)[0], labels[fg]] = 1.0
    return onehot


def _expand_onehot(labels: torch.Tensor, label_weights: Optional[torch.Tensor], num_channels: int):
    """One-hot targets (background -> all-zero row) and the label weights repeated per channel."""
    onehot = labels_to_onehot(labels, num_channels)
    if label_weights is not None:
        label_weights = label_weights.reshape(-1, 1).expand(-1, num_channels).float()
    return onehot, label_weights


class CrossEntropyLoss(nn.Module):
    """cls_score [N, C] (softmax: C includes background) and integer labels [N].

    use_sigmoid: per-class binary cross-entropy where label ``C`` (background) is all zeros.
    use_mask: MMDetection's ``mask_cross_entropy`` for Mask R-CNN, called in its argument order
    ``loss(mask_logits [P, C, S, S], mask_targets [P, S, S], roi_labels [P])``: the third
    argument is each RoI's class label, which picks the logit channel; binary cross-entropy with
    logits against the 0/1 targets, averaged over all P * S * S elements (reduction "mean").
    """

    def __init__(self, use_sigmoid: bool = False, use_mask: bool = False, reduction: str = "mean",
                 class_weight: Optional[Sequence[float]] = None, loss_weight: float = 1.0,
                 ignore_index: int = -100, avg_non_ignore: bool = False):
        super().__init__()
        if use_sigmoid and use_mask:
            raise ValueError("use_sigmoid and use_mask are exclusive")
        if use_mask and class_weight is not None:
            # MMDetection hands class_weight to BCE as an element weight over the mask's last
            # axis, which is not a per-class weight; refuse rather than copy that.
            raise ConfigError("CrossEntropyLoss: class_weight is not supported with use_mask=True")
        self.use_sigmoid = use_sigmoid
        self.use_mask = use_mask
        self.reduction = reduction
        self.class_weight = class_weight
        self.loss_weight = loss_weight
        self.ignore_index = ignore_index
        self.avg_non_ignore = avg_non_ignore

    def forward(self, cls_score: torch.Tensor, label: torch.Tensor, weight: Optional[torch.Tensor] = None,
                avg_factor: Optional[float] = None, reduction_override: Optional[str] = None) -> torch.Tensor:
        reduction = reduction_override or self.reduction
        class_weight = (cls_score.new_tensor(self.class_weight) if self.class_weight is not None else None)
        if self.use_mask:
            return self.loss_weight * self._mask_loss(cls_score, label, weight, reduction, avg_factor)
        if self.use_sigmoid:
            if label.dim() == cls_score.dim():
                target, weight_e = label.float(), (None if weight is None else weight.float())
            else:
                target, weight_e = _expand_onehot(label, weight, cls_score.shape[-1])
            loss = F.binary_cross_entropy_with_logits(cls_score, target, pos_weight=None, reduction="none")
            if class_weight is not None:
                loss = loss * class_weight
            loss = weight_reduce_loss(loss, weight_e, reduction, avg_factor)
        else:
            loss = F.cross_entropy(cls_score, label, weight=class_weight, reduction="none",
                                   ignore_index=self.ignore_index)
            if weight is not None:
                weight = weight.float()
            if avg_factor is None and self.avg_non_ignore and reduction == "mean":
                avg_factor = (label != self.ignore_index).sum().item()
            loss = weight_reduce_loss(loss, weight, reduction, avg_factor)
        return self.loss_weight * loss

    @staticmethod
    def _mask_loss(mask_logits: torch.Tensor, targets: torch.Tensor, roi_labels: Optional[torch.Tensor],
                   reduction: str, avg_factor: Optional[float]) -> torch.Tensor:
        if roi_labels is None:
            raise ValueError("CrossEntropyLoss(use_mask=True) needs the RoI labels [P] as third argument")
        if mask_logits.dim() != 4 or targets.shape != (mask_logits.shape[0],) + mask_logits.shape[2:]:
            raise ValueError(f"mask loss: expected logits [P, C, S, S] and targets [P, S, S], got "
                             f"{tuple(mask_logits.shape)} and {tuple(targets.shape)}")
        rois = torch.arange(mask_logits.shape[0], device=mask_logits.device)
        selected = mask_logits[rois, roi_labels.long()]
        loss = F.binary_cross_entropy_with_logits(selected, targets.to(selected.dtype), reduction="none")
        return weight_reduce_loss(loss, None, reduction, avg_factor)
