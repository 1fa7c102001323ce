"""Loss weighting and reduction shared by every loss (MMDetection's ``weight_reduce_loss``)."""
from __future__ import annotations

from typing import Optional

import torch


def weight_reduce_loss(loss: torch.Tensor, weight: Optional[torch.Tensor] = None,
                       reduction: str = "mean", avg_factor: Optional[float] = None) -> torch.Tensor:
    """Multiply an element-wise loss by ``weight``, then reduce.

    With ``avg_factor`` and reduction "mean" the sum is divided by avg_factor (e.g. the number of
    sampled anchors) instead of the element count.
    """
    if weight is not None:
        loss = loss * weight
    if avg_factor is None:
        if reduction == "mean":
            return loss.mean()
        if reduction == "sum":
            return loss.sum()
        if reduction == "none":
            return loss
        raise ValueError(f"unknown reduction {reduction!r}")
    if reduction == "mean":
        # eps keeps a zero avg_factor (no samples) from producing NaN, as the reference does.
        return loss.sum() / (avg_factor + torch.finfo(torch.float32).eps)
    if reduction == "none":
        return loss
    raise ValueError("avg_factor can only be used with reduction 'mean' or 'none'")
