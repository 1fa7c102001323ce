"""Weight Standardization (Qiao et al. 2019) as mmcv's ``ConvWS2d`` (conv type ``"ConvWS"``).

Each output channel's weight is standardised before the convolution:
``w_hat = (w - mean(w_o)) / (std(w_o) + eps)``, with the mean and the *unbiased* standard
deviation taken over that channel's ``C/groups * kh * kw`` entries and ``eps = 1e-5`` added to
the std (mmcv ``cnn/bricks/conv_ws.py``: ``weight_flat.std(dim=1)``, ``(weight - mean) / (std +
eps)``). The stored parameter stays the raw weight, so the keys are those of ``nn.Conv2d``.
"""
from __future__ import annotations

from torch import Tensor, nn
import torch.nn.functional as F

__all__ = ["ConvWS2d", "standardize_weight"]


def standardize_weight(weight: Tensor, eps: float = 1e-5) -> Tensor:
    """``weight [O, ...]`` -> per-output-channel zero mean, unit (unbiased) std, as mmcv."""
    flat = weight.reshape(weight.shape[0], -1)
    mean = flat.mean(dim=1).reshape(-1, *([1] * (weight.dim() - 1)))
    std = flat.std(dim=1).reshape(-1, *([1] * (weight.dim() - 1)))
    return (weight - mean) / (std + eps)


class ConvWS2d(nn.Conv2d):
    """``nn.Conv2d`` whose forward uses :func:`standardize_weight` of its weight."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, eps: float = 1e-5):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         dilation=dilation, groups=groups, bias=bias)
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, standardize_weight(self.weight, self.eps), self.bias, self.stride,
                        self.padding, self.dilation, self.groups)
