"""The YOLOv3 neck (MMDetection ``YOLOV3Neck``, mmdet/models/necks/yolo_neck.py): a simplified
FPN that works from the coarsest backbone level down.

``detect1`` (five alternating 1x1 / 3x3 ConvModules) runs on the coarsest input; then for each
finer level i = 1, 2, ...: ``conv{i}`` (1x1) shrinks the previous output, it is upsampled x2
(nearest), concatenated *before* the backbone feature along channels, and ``detect{i+1}`` runs
on the result. Keys: ``neck.detect1.conv1.conv.weight``, ``neck.conv1.bn.weight`` ...
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from detzoo.errors import ConfigError
from detzoo.models.layers import ConvModule

__all__ = ["DetectionBlock", "YOLOV3Neck"]

_LEAKY = dict(type="LeakyReLU", negative_slope=0.1)


class DetectionBlock(nn.Module):
    """[N, in_channels, H, W] -> [N, out_channels, H, W] through 1x1 (n), 3x3 (2n), 1x1 (n),
    3x3 (2n), 1x1 (n) ConvModules named conv1..conv5."""

    def __init__(self, in_channels: int, out_channels: int, conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type="BN", requires_grad=True), act_cfg: dict = _LEAKY):
        super().__init__()
        double = out_channels * 2
        cfg = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.conv1 = ConvModule(in_channels, out_channels, 1, **cfg)
        self.conv2 = ConvModule(out_channels, double, 3, padding=1, **cfg)
        self.conv3 = ConvModule(double, out_channels, 1, **cfg)
        self.conv4 = ConvModule(out_channels, double, 3, padding=1, **cfg)
        self.conv5 = ConvModule(double, out_channels, 1, **cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv5(self.conv4(self.conv3(self.conv2(self.conv1(x)))))


class YOLOV3Neck(nn.Module):
    """Args:
        num_scales: number of levels (3 for YOLOv3).
        in_channels: backbone channels, coarsest first (Darknet-53: [1024, 512, 256]).
        out_channels: output channels per level, coarsest first ([512, 256, 128]).

    ``forward(feats)`` takes the backbone outputs finest first (as the backbone returns them,
    e.g. strides 8, 16, 32) and returns the neck outputs coarsest first (strides 32, 16, 8).
    """

    def __init__(self, num_scales: int, in_channels: Sequence[int], out_channels: Sequence[int],
                 conv_cfg: Optional[dict] = None, norm_cfg: dict = dict(type="BN", requires_grad=True),
                 act_cfg: dict = _LEAKY):
        super().__init__()
        if not num_scales == len(in_channels) == len(out_channels):
            raise ConfigError(f"YOLOV3Neck: num_scales={num_scales}, in_channels={list(in_channels)} "
                              f"and out_channels={list(out_channels)} must have the same length")
        self.num_scales = num_scales
        self.in_channels = list(in_channels)
        self.out_channels = list(out_channels)
        cfg = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.detect1 = DetectionBlock(in_channels[0], out_channels[0], **cfg)
        for i in range(1, num_scales):
            self.add_module(f"conv{i}", ConvModule(out_channels[i - 1], out_channels[i], 1, **cfg))
            # the upsampled coarse branch (out_channels[i]) comes first in the concatenation
            self.add_module(f"detect{i + 1}",
                            DetectionBlock(in_channels[i] + out_channels[i], out_channels[i], **cfg))

    def forward(self, feats: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        if len(feats) != self.num_scales:
            raise ValueError(f"YOLOV3Neck expects {self.num_scales} feature maps, got {len(feats)}")
        out = self.detect1(feats[-1])
        outs = [out]
        for i, x in enumerate(reversed(feats[:-1])):
            up = F.interpolate(getattr(self, f"conv{i + 1}")(out), scale_factor=2, mode="nearest")
            out = getattr(self, f"detect{i + 2}")(torch.cat([up, x], dim=1))
            outs.append(out)
        return tuple(outs)
