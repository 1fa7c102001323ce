"""ResNeXt (Xie et al. 2017) with MMDetection's module names (mmdet ``backbones/resnext.py``).

Same layout and keys as :class:`~detzoo.models.backbones.resnet.ResNet`; only the bottleneck
changes: its two inner convs have ``width = floor(planes * base_width / base_channels) *
groups`` channels (``planes`` when ``groups == 1``) and the 3x3 ``conv2`` is grouped. E.g.
ResNeXt-101 32x4d: ``layer1.0.conv2.weight`` is ``[128, 4, 3, 3]`` (width 128, 128/32 inputs per
group), ``layer4.0.conv2.weight`` ``[1024, 32, 3, 3]``; outputs have 256/512/1024/2048 channels.
"""
from __future__ import annotations

import math

from detzoo.errors import ConfigError

from .resnet import Bottleneck as _ResNetBottleneck
from .resnet import ResNet, make_res_layer

__all__ = ["ResNeXt", "ResNeXtBottleneck"]


class ResNeXtBottleneck(_ResNetBottleneck):
    """Grouped bottleneck: ``groups`` paths of ``floor(planes * base_width / base_channels)``
    channels each in conv1/conv2 (``groups=1`` is the ResNet bottleneck)."""

    def __init__(self, inplanes: int, planes: int, groups: int = 1, base_width: int = 4,
                 base_channels: int = 64, **kwargs):
        # mmdet's exact float expression: RegNet passes base_width/base_channels that do not
        # divide evenly, and the checkpoint shapes follow what this floor gives
        width = (planes if groups == 1
                 else math.floor(planes * (base_width / base_channels)) * groups)
        super().__init__(inplanes, planes, groups=groups, width=width, **kwargs)


class ResNeXt(ResNet):
    """ResNeXt-{50,101,152} with ``groups`` x ``base_width`` d (32x4d, 64x4d, 32x8d ...).

    Takes every :class:`ResNet` argument (``depth``, ``frozen_stages``, ``norm_cfg``,
    ``conv_cfg``, ``dcn``, ``init_cfg`` ...); with ``dcn`` the deformable conv2 is grouped too,
    as in mmdet. ``forward`` returns the stage outputs of ``out_indices``.
    """

    arch_settings = {
        50: (ResNeXtBottleneck, (3, 4, 6, 3)),
        101: (ResNeXtBottleneck, (3, 4, 23, 3)),
        152: (ResNeXtBottleneck, (3, 8, 36, 3)),
    }

    def __init__(self, depth: int, groups: int = 1, base_width: int = 4, **kwargs):
        if not isinstance(groups, int) or groups < 1 or not isinstance(base_width, int) \
                or base_width < 1:
            raise ConfigError(f"ResNeXt groups={groups!r} and base_width={base_width!r} must be "
                              "positive integers")
        # read by make_res_layer, which ResNet.__init__ calls
        self.groups = groups
        self.base_width = base_width
        super().__init__(depth, **kwargs)

    def make_res_layer(self, *args, **kwargs):
        return make_res_layer(*args, groups=self.groups, base_width=self.base_width,
                              base_channels=self.base_channels, **kwargs)
