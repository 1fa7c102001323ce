"""A learnable scalar multiplier (mmcv ``Scale``): one per pyramid level in FCOS/ATSS/GFL heads,
so a head shared by all levels can still regress level-specific magnitudes."""
import torch
from torch import nn


class Scale(nn.Module):
    """``x * scale`` with ``scale`` a float32 parameter of shape [] (state-dict key ``scale``)."""

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(scale, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale
