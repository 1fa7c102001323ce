"""SSD neck (MMDetection 3.x ``SSDNeck``): L2Norm on the first input, then extra layers.

Keys: ``l2_norm.weight`` and ``extra_layers.<i>.<0|1>.conv.{weight,bias}`` (``ConvModule``s: a
1x1 conv to ``out_channel // 2`` then a ``kernel`` conv to ``out_channel`` with the level's
stride and padding; ReLU after both). SSD300 turns the 19x19 fc7 map into 10, 5, 3, 1; SSD512
(last_kernel_size 4) turns 32 into 16, 8, 4, 2, 1.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
from torch import nn

from detzoo.errors import ConfigError
from detzoo.models.layers import ConvModule

__all__ = ["L2Norm", "SSDNeck"]


class L2Norm(nn.Module):
    """``x [N, C, H, W] -> weight[c] * x / (||x||_2 over C + eps)``, computed in float32.

    ``weight`` starts at ``scale`` (20 in SSD: ParseNet's learnable rescaling of conv4_3).
    """

    def __init__(self, num_channels: int, scale: float = 20.0, eps: float = 1e-10):
        super().__init__()
        self.weight = nn.Parameter(torch.full((num_channels,), float(scale)))
        self.scale = float(scale)
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_float = x.float()
        norm = x_float.pow(2).sum(1, keepdim=True).sqrt() + self.eps
        # (weight * x) / norm, in MMDetection's order of operations
        return (self.weight.float()[None, :, None, None] * x_float / norm).type_as(x)


class SSDNeck(nn.Module):
    """``forward(inputs)``: tuple of the backbone maps -> tuple of ``len(out_channels)`` maps
    (inputs first, the first L2-normalised when ``l2_norm_scale`` is set, then one map per
    extra layer, each computed from the previous output).

    Args:
        in_channels: channels of the backbone maps; must equal ``out_channels[:len(in_channels)]``.
        out_channels: channels of every output level.
        level_strides, level_paddings: stride / padding of each extra layer's second conv.
        l2_norm_scale: initial L2Norm weight; None/0 for no L2Norm.
        last_kernel_size: kernel of the last extra layer's second conv (3; 4 in SSD512).
    """

    def __init__(self, in_channels: Sequence[int], out_channels: Sequence[int],
                 level_strides: Sequence[int], level_paddings: Sequence[int],
                 l2_norm_scale: Optional[float] = 20.0, last_kernel_size: int = 3,
                 use_depthwise: bool = False, conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None, act_cfg: Optional[dict] = dict(type="ReLU")):
        super().__init__()
        in_channels, out_channels = tuple(in_channels), tuple(out_channels)
        num_extra = len(out_channels) - len(in_channels)
        if num_extra <= 0 or out_channels[:len(in_channels)] != in_channels:
            raise ConfigError(f"SSDNeck out_channels={out_channels} must start with in_channels="
                              f"{in_channels} and add at least one level")
        if not len(level_strides) == len(level_paddings) == num_extra:
            raise ConfigError(f"SSDNeck: {num_extra} extra levels need as many level_strides "
                              f"({len(level_strides)}) and level_paddings ({len(level_paddings)})")
        if use_depthwise:
            raise ConfigError("SSDNeck use_depthwise=True (SSDLite) is not supported")
        self.in_channels, self.out_channels = in_channels, out_channels
        if l2_norm_scale:
            self.l2_norm = L2Norm(in_channels[0], l2_norm_scale)
        self.extra_layers = nn.ModuleList()
        for i, (channels, stride, padding) in enumerate(zip(out_channels[len(in_channels):],
                                                            level_strides, level_paddings)):
            kernel = last_kernel_size if i == num_extra - 1 else 3
            previous = out_channels[len(in_channels) - 1 + i]
            common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
            self.extra_layers.append(nn.Sequential(
                ConvModule(previous, channels // 2, 1, **common),
                ConvModule(channels // 2, channels, kernel, stride=stride, padding=padding, **common)))
        self.init_weights()

    def init_weights(self) -> None:
        # mmdet SSDNeck init_cfg: Xavier-uniform convs (bias 0), BN weight 1; L2Norm at its scale
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if hasattr(self, "l2_norm"):
            with torch.no_grad():
                self.l2_norm.weight.fill_(self.l2_norm.scale)

    def forward(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        if len(inputs) != len(self.in_channels):
            raise ValueError(f"SSDNeck expects {len(self.in_channels)} inputs, got {len(inputs)}")
        outs = list(inputs)
        if hasattr(self, "l2_norm"):
            outs[0] = self.l2_norm(outs[0])
        feat = outs[-1]
        for layer in self.extra_layers:
            feat = layer(feat)
            outs.append(feat)
        return tuple(outs)
