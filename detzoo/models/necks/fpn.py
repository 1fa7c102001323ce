"""Feature Pyramid Network (Lin et al. 2017) with MMDetection's module names and options.

Keys: ``lateral_convs.{i}.conv`` (1x1) and ``fpn_convs.{i}.conv`` (3x3), the extra stride-2
convs continuing the ``fpn_convs`` index. Follows mmdet ``models/necks/fpn.py`` (late 2.x/3.x,
where ``end_level`` is inclusive).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from detzoo.errors import ConfigError
from detzoo.models.layers.conv_module import ConvModule

__all__ = ["FPN"]

_EXTRA_SOURCES = ("on_input", "on_lateral", "on_output")


class FPN(nn.Module):
    """Top-down pyramid: ``forward(inputs)`` -> tuple of ``num_outs`` maps of ``out_channels``.

    ``inputs`` is the backbone's tuple, one ``[N, in_channels[i], H_i, W_i]`` map per entry of
    ``in_channels``. Levels ``start_level..end_level`` (inclusive; -1 = last) get a 1x1 lateral
    conv; each coarser lateral is resized to the next finer one with ``F.interpolate(size=...,
    **upsample_cfg)`` (or ``scale_factor`` when ``upsample_cfg`` has one) and added; a 3x3 conv
    then makes each output. Outputs beyond the backbone levels come from
    ``max_pool2d(kernel 1, stride 2)`` of the previous output when ``add_extra_convs`` is False,
    else from 3x3 stride-2 convs whose first input is the last backbone map used
    (``"on_input"``, also for True), the last lateral (``"on_lateral"``) or the last output
    (``"on_output"``); with ``relu_before_extra_convs`` the later extra convs see ``relu(x)``.

    Conv weights start Xavier-uniform with zero bias (mmdet's FPN init_cfg).
    """

    def __init__(self, in_channels: list[int], out_channels: int, num_outs: int,
                 start_level: int = 0, end_level: int = -1,
                 add_extra_convs: bool | str = False, relu_before_extra_convs: bool = False,
                 no_norm_on_lateral: bool = False, conv_cfg: dict | None = None,
                 norm_cfg: dict | None = None, act_cfg: dict | None = None,
                 upsample_cfg: dict = dict(mode="nearest")):
        super().__init__()
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        self.num_ins = len(self.in_channels)
        self.num_outs = num_outs
        if not 0 <= start_level < self.num_ins:
            raise ConfigError(f"FPN start_level={start_level} must index one of the "
                              f"{self.num_ins} in_channels")
        if end_level == -1 or end_level == self.num_ins - 1:
            self.backbone_end_level = self.num_ins
            if num_outs < self.num_ins - start_level:
                raise ConfigError(f"FPN num_outs={num_outs} is fewer than the "
                                  f"{self.num_ins - start_level} levels from start_level")
        else:
            # a pyramid that stops before the last input has no extra levels
            if not start_level <= end_level < self.num_ins:
                raise ConfigError(f"FPN end_level={end_level} must lie in "
                                  f"{start_level}..{self.num_ins - 1} or be -1")
            if num_outs != end_level - start_level + 1:
                raise ConfigError(f"FPN num_outs={num_outs} must equal end_level - start_level"
                                  f" + 1 = {end_level - start_level + 1}")
            self.backbone_end_level = end_level + 1
        if add_extra_convs is True:
            add_extra_convs = "on_input"
        if add_extra_convs is not False and add_extra_convs not in _EXTRA_SOURCES:
            raise ConfigError(f"FPN add_extra_convs={add_extra_convs!r} must be a bool or one "
                              f"of {_EXTRA_SOURCES}")
        self.start_level = start_level
        self.end_level = end_level
        self.add_extra_convs = add_extra_convs
        self.relu_before_extra_convs = relu_before_extra_convs
        self.upsample_cfg = dict(upsample_cfg)

        common = dict(conv_cfg=conv_cfg, act_cfg=act_cfg, inplace=False)
        self.lateral_convs = nn.ModuleList()
        self.fpn_convs = nn.ModuleList()
        for i in range(start_level, self.backbone_end_level):
            self.lateral_convs.append(ConvModule(
                self.in_channels[i], out_channels, 1,
                norm_cfg=None if no_norm_on_lateral else norm_cfg, **common))
            self.fpn_convs.append(ConvModule(out_channels, out_channels, 3, padding=1,
                                             norm_cfg=norm_cfg, **common))
        extra_levels = num_outs - self.backbone_end_level + start_level
        if add_extra_convs:
            for i in range(extra_levels):
                in_ch = (self.in_channels[self.backbone_end_level - 1]
                         if i == 0 and add_extra_convs == "on_input" else out_channels)
                self.fpn_convs.append(ConvModule(in_ch, out_channels, 3, stride=2, padding=1,
                                                 norm_cfg=norm_cfg, **common))
        self.init_weights()

    def init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, inputs) -> tuple[torch.Tensor, ...]:
        if len(inputs) != self.num_ins:
            raise ConfigError(f"FPN got {len(inputs)} feature maps but in_channels="
                              f"{self.in_channels} declares {self.num_ins}: check the "
                              "backbone's out_indices")
        laterals = [conv(inputs[self.start_level + i])
                    for i, conv in enumerate(self.lateral_convs)]
        for i in range(len(laterals) - 1, 0, -1):
            if "scale_factor" in self.upsample_cfg:
                upper = F.interpolate(laterals[i], **self.upsample_cfg)
            else:
                # size= rather than scale_factor=2 so odd sizes (e.g. 25 -> 13) line up
                upper = F.interpolate(laterals[i], size=laterals[i - 1].shape[2:],
                                      **self.upsample_cfg)
            laterals[i - 1] = laterals[i - 1] + upper

        num_levels = len(laterals)
        outs = [self.fpn_convs[i](laterals[i]) for i in range(num_levels)]
        if self.num_outs > num_levels:
            if not self.add_extra_convs:
                for _ in range(self.num_outs - num_levels):
                    outs.append(F.max_pool2d(outs[-1], 1, stride=2))
            else:
                if self.add_extra_convs == "on_input":
                    source = inputs[self.backbone_end_level - 1]
                elif self.add_extra_convs == "on_lateral":
                    source = laterals[-1]
                else:
                    source = outs[-1]
                outs.append(self.fpn_convs[num_levels](source))
                for i in range(num_levels + 1, self.num_outs):
                    prev = F.relu(outs[-1]) if self.relu_before_extra_convs else outs[-1]
                    outs.append(self.fpn_convs[i](prev))
        return tuple(outs)
