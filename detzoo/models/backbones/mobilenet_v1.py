"""MobileNet-V1 backbone as PaddleDetection builds it for SSD and YOLOv3
(``ppdet/modeling/backbones/mobilenet.py``, the fluid/static ``MobileNet`` whose weights ship
as ``ssd_mobilenet_v1_voc.tar`` and ``yolov3_mobilenet_v1.tar``).

Every conv is bias-free and followed by batch norm (eps 1e-5) and ReLU. The network is a 3x3
stride-2 stem ``conv1`` (32 channels) and 13 depthwise-separable blocks, each a 3x3 depthwise
conv ``dw`` and a 1x1 pointwise conv ``sep``:

    block    conv2_1 conv2_2 conv3_1 conv3_2 conv4_1 conv4_2 conv5_1..5 conv5_6 conv6
    stride   1       2       1       2       1       2       1          2       1
    out ch   64      128     128     256     256     512     512        1024    1024

(``scale`` multiplies every width, as Paddle's ``conv_group_scale``). ``out_indices`` numbers
the blocks from 1 as PaddleDetection's ``feature_maps`` does: 1..13 are the blocks above, 14..
the extra blocks ``conv7_1..`` (1x1 ConvBN to f1, 3x3 stride-2 ConvBN to f2) that follow conv6
when ``with_extra_blocks``:
  * YOLOv3 (default ``(4, 6, 13)``, Paddle's default): conv3_2, conv4_2, conv6 -> 256, 512, 1024
    channels at strides 8, 16, 32 (the first map of each stride).
  * SSD (``with_extra_blocks=True``, default ``(11, 13, 14, 15, 16, 17)``): conv5_5, conv6 and
    the four extra blocks of ``extra_block_filters`` ((256, 512), (128, 256), (128, 256),
    (64, 128)) -> 512, 1024, 512, 256, 256, 128 channels at strides 16, 32, 64, 128, 256, 512;
    a 300x300 image gives 19, 10, 5, 3, 2, 1.

Key names: ``<block>.<dw|sep|extra1|extra2>.conv.weight`` and ``...bn.{weight,bias,running_mean,
running_var}`` (stem: ``conv1.conv`` / ``conv1.bn``). :func:`paddle_static_name` gives the
Paddle parameter name of each key (``conv2_1.dw.bn.weight`` -> ``conv2_1_dw_bn_scale``), so a
converter is a rename; note Paddle stores no ``num_batches_tracked``.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from detzoo.errors import ConfigError
from .freezing import FrozenStagesMixin
from .pretrained import PretrainedInitMixin
from .resnet import pretrained_init_cfg

__all__ = ["ConvBN", "DepthwiseSeparable", "MobileNetV1", "paddle_static_name"]

# (name, depthwise channels, pointwise channels, stride) of the 13 blocks, Paddle's names
_BLOCKS = ([("conv2_1", 32, 64, 1), ("conv2_2", 64, 128, 2), ("conv3_1", 128, 128, 1),
            ("conv3_2", 128, 256, 2), ("conv4_1", 256, 256, 1), ("conv4_2", 256, 512, 2)]
           + [(f"conv5_{i}", 512, 512, 1) for i in range(1, 6)]
           + [("conv5_6", 512, 1024, 2), ("conv6", 1024, 1024, 1)])
_YOLO_OUT_INDICES = (4, 6, 13)
_SSD_OUT_INDICES = (11, 13, 14, 15, 16, 17)


class ConvBN(nn.Sequential):
    """conv (no bias) -> BatchNorm2d -> ReLU: [N, in, H, W] -> [N, out, H / stride, W / stride]."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 groups: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                              padding=kernel_size // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=1e-5)
        self.relu = nn.ReLU(inplace=True)


class DepthwiseSeparable(nn.Sequential):
    """3x3 depthwise ConvBN (``dw``, carries the stride) then 1x1 pointwise ConvBN (``sep``)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.dw = ConvBN(in_channels, in_channels, 3, stride=stride, groups=in_channels)
        self.sep = ConvBN(in_channels, out_channels, 1)


class _ExtraBlock(nn.Sequential):
    """1x1 ConvBN (``extra1``) then 3x3 stride-2 ConvBN (``extra2``): Paddle's ``_extra_block``."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int):
        super().__init__()
        self.extra1 = ConvBN(in_channels, mid_channels, 1)
        self.extra2 = ConvBN(mid_channels, out_channels, 3, stride=2)


def paddle_static_name(key: str) -> str:
    """Our state-dict key -> PaddleDetection (fluid) parameter name, e.g.
    ``conv1.conv.weight`` -> ``conv1_weights``, ``conv7_1.extra2.bn.running_var`` ->
    ``conv7_1_extra2_bn_variance``."""
    module, _, param = key.rpartition(".")
    parts = module.split(".")
    if len(parts) < 2 or parts[-1] not in ("conv", "bn"):
        raise ValueError(f"{key!r} is not a MobileNetV1 conv/bn parameter")
    base = "_".join(parts[:-1])
    if parts[-1] == "conv":
        if param != "weight":
            raise ValueError(f"{key!r}: MobileNetV1 convs have only a weight")
        return f"{base}_weights"
    suffix = {"weight": "scale", "bias": "offset", "running_mean": "mean", "running_var": "variance"}
    if param not in suffix:
        raise ValueError(f"{key!r} has no Paddle counterpart (Paddle BN has scale/offset/mean/variance)")
    return f"{base}_bn_{suffix[param]}"


class MobileNetV1(PretrainedInitMixin, FrozenStagesMixin, nn.Module):
    """``forward(x: [N, 3, H, W])`` -> tuple of maps (see the module docstring for which).

    Args:
        scale: width multiplier (Paddle's ``conv_group_scale``; 1.0 in both zoo models).
        out_indices: 1-based numbers of the blocks whose outputs are returned (Paddle's
            ``feature_maps``); default (4, 6, 13), or (11, 13, 14, 15, 16, 17) with extra blocks.
        with_extra_blocks: append the SSD extra blocks after conv6.
        extra_block_filters: (f1, f2) of each extra block.
        norm_eval: keep batch norms in eval mode during training (False: Paddle trains them).
        frozen_stages: -1 freezes nothing; k >= 0 freezes the stem and the first k blocks.
        init_cfg: None or ``dict(type="Pretrained", checkpoint=path[, prefix])`` of a checkpoint
            with our key names, read by :meth:`init_weights`.
    """

    def __init__(self, scale: float = 1.0, out_indices: Optional[Sequence[int]] = None,
                 with_extra_blocks: bool = False,
                 extra_block_filters: Sequence[Sequence[int]] = ((256, 512), (128, 256), (128, 256), (64, 128)),
                 norm_eval: bool = False, frozen_stages: int = -1, pretrained: Optional[str] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__()
        if scale <= 0:
            raise ConfigError(f"MobileNetV1 scale={scale} must be positive")
        if not -1 <= frozen_stages <= len(_BLOCKS):
            raise ConfigError(f"MobileNetV1 frozen_stages={frozen_stages} must be in -1..{len(_BLOCKS)}")
        if with_extra_blocks and (not extra_block_filters
                                  or any(len(f) != 2 for f in extra_block_filters)):
            raise ConfigError(f"MobileNetV1 extra_block_filters={extra_block_filters!r} must be "
                              "(f1, f2) pairs")
        self.init_cfg = pretrained_init_cfg("MobileNetV1", pretrained, init_cfg)
        self.with_extra_blocks = with_extra_blocks
        self.norm_eval = norm_eval
        self.frozen_stages = frozen_stages
        width = lambda c: int(c * scale)  # noqa: E731  (Paddle: int(num_filters * scale))
        self.conv1 = ConvBN(3, width(32), 3, stride=2)
        self.block_names = [name for name, *_ in _BLOCKS]
        for name, dw_channels, pw_channels, stride in _BLOCKS:
            self.add_module(name, DepthwiseSeparable(width(dw_channels), width(pw_channels), stride))
        channels = [width(pw) for _, _, pw, _ in _BLOCKS]
        self.extra_names = []
        if with_extra_blocks:
            for i, (mid, out) in enumerate(extra_block_filters):
                name = f"conv7_{i + 1}"
                self.add_module(name, _ExtraBlock(channels[-1], width(mid), width(out)))
                self.extra_names.append(name)
                channels.append(width(out))
        if out_indices is None:
            out_indices = (_SSD_OUT_INDICES[:2] + tuple(range(14, 14 + len(self.extra_names)))
                           if with_extra_blocks else _YOLO_OUT_INDICES)
        self.out_indices = tuple(out_indices)
        if not self.out_indices or not all(1 <= i <= len(channels) for i in self.out_indices):
            raise ConfigError(f"MobileNetV1 out_indices={self.out_indices} must be block numbers in "
                              f"1..{len(channels)} (13 blocks{' + extra blocks' if with_extra_blocks else ''})")
        self.out_channels = [channels[i - 1] for i in self.out_indices]
        self._init_random()
        self._freeze_stages()

    def _init_random(self) -> None:
        # Paddle's conv initializer is MSRA (Kaiming normal, fan_in); BN weight 1, bias 0
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            elif isinstance(m, _BatchNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _frozen_modules(self):
        if self.frozen_stages < 0:
            return []
        return [self.conv1] + [getattr(self, n) for n in self.block_names[:self.frozen_stages]]

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        x = self.conv1(x)
        outs = []
        last = max(self.out_indices)
        for number, name in enumerate(self.block_names + self.extra_names, start=1):
            if number > last:
                break
            x = getattr(self, name)(x)
            if number in self.out_indices:
                outs.append(x)
        return tuple(outs)
