"""VGG backbone of SSD (MMDetection ``SSDVGG``: mmcv ``VGG`` + pool5/fc6/fc7 as convolutions).

Everything lives in one ``nn.Sequential`` called ``features``, so keys are
``backbone.features.<index>.{weight,bias}`` exactly as in MMDetection's SSD checkpoints
(shared/checkpoint-layouts/mmdet/ssd300_coco.json). For VGG-16 the indices are:

    0-3 conv1_x + ReLU, 4 pool1 | 5-8 conv2_x, 9 pool2 | 10-15 conv3_x, 16 pool3 |
    17-22 conv4_x (22 = ReLU of conv4_3, the stride-8 output), 23 pool4 | 24-29 conv5_x |
    30 pool5 (3x3, stride 1, pad 1) | 31 fc6 (3x3 conv, 1024, dilation 6, pad 6), 32 ReLU |
    33 fc7 (1x1 conv, 1024), 34 ReLU (the stride-16 output).

Max pools use ``ceil_mode=True`` (mmdet default) so a 300x300 image gives 38x38 conv4_3 and
19x19 fc7 maps. The L2Norm of conv4_3 and the extra layers are in :class:`SSDNeck` (mmdet 3.x
keys ``neck.l2_norm.weight``, ``neck.extra_layers...``).
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
from torch import nn

from detzoo.errors import ConfigError
from .resnet import pretrained_init_cfg
from .pretrained import PretrainedInitMixin

__all__ = ["SSDVGG"]


class SSDVGG(PretrainedInitMixin, nn.Module):
    """``forward(x: [N, 3, H, W])`` -> tuple of the ``features`` outputs at ``out_feature_indices``
    (VGG-16 defaults: conv4_3 [N, 512, H/8, W/8] and fc7 [N, 1024, H/16, W/16], ceil-rounded).

    Args:
        depth: 11, 13, 16 or 19.
        with_last_pool: keep pool5 of plain VGG (SSD drops it and adds its own 3x3 pool).
        ceil_mode: ceil rounding in the 2x2 max pools.
        out_indices: mmcv VGG's stage outputs; accepted for config compatibility, SSDVGG
            returns ``out_feature_indices`` (as MMDetection's does).
        out_feature_indices: indices into ``features`` whose outputs are returned.
        init_cfg: None (random) or ``dict(type="Pretrained", checkpoint=path[, prefix])``, read
            by :meth:`init_weights` (e.g. a local copy of open-mmlab://vgg16_caffe).
    """

    arch_settings = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}

    def __init__(self, depth: int = 16, with_last_pool: bool = False, ceil_mode: bool = True,
                 out_indices: Sequence[int] = (3, 4), out_feature_indices: Sequence[int] = (22, 34),
                 pretrained: Optional[str] = None, init_cfg: Optional[dict] = None):
        super().__init__()
        if depth not in self.arch_settings:
            raise ConfigError(f"SSDVGG depth={depth!r} is not one of {tuple(self.arch_settings)}")
        self.depth = depth
        self.out_indices = tuple(out_indices)
        self.init_cfg = pretrained_init_cfg("SSDVGG", pretrained, init_cfg)
        layers, in_channels = [], 3
        stages = self.arch_settings[depth]
        for i, num_convs in enumerate(stages):
            out_channels = 64 * 2 ** i if i < 4 else 512
            for _ in range(num_convs):
                layers += [nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU(inplace=True)]
                in_channels = out_channels
            if i < len(stages) - 1 or with_last_pool:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=ceil_mode))
        layers += [nn.MaxPool2d(kernel_size=3, stride=1, padding=1),
                   nn.Conv2d(512, 1024, kernel_size=3, padding=6, dilation=6), nn.ReLU(inplace=True),
                   nn.Conv2d(1024, 1024, kernel_size=1), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        bad = [i for i in out_feature_indices if not 0 <= i < len(self.features)]
        if bad or not out_feature_indices:
            raise ConfigError(f"SSDVGG out_feature_indices={tuple(out_feature_indices)} must index "
                              f"features 0..{len(self.features) - 1}")
        self.out_feature_indices = tuple(out_feature_indices)
        self.out_channels = [self._channels_at(i) for i in self.out_feature_indices]
        self._init_random()

    def _channels_at(self, index: int) -> int:
        convs = [m for m in list(self.features)[:index + 1] if isinstance(m, nn.Conv2d)]
        return convs[-1].out_channels if convs else 3

    def _init_random(self) -> None:
        # mmdet SSDVGG without a checkpoint: Kaiming(Conv2d), i.e. normal, fan_out, ReLU gain, bias 0
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        outs = []
        last = max(self.out_feature_indices)
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.out_feature_indices:
                outs.append(x)
            if i == last:
                break
        return tuple(outs)
