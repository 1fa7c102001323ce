"""Darknet-53, the YOLOv3 backbone, with MMDetection's module names (mmdet/models/backbones/
darknet.py): ``conv1`` (3x3, 32 channels) then ``conv_res_block1..5``, each a stride-2 3x3
``conv`` followed by ``res0..res{n-1}`` residual blocks (``conv1`` 1x1 halving the channels,
``conv2`` 3x3 restoring them, plus the identity). Every conv is a ConvModule with BN and
LeakyReLU(0.1), so keys read ``backbone.conv_res_block3.res7.conv2.bn.running_var``.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
from torch import nn

from detzoo.errors import ConfigError
from detzoo.models.layers import ConvModule
from .freezing import FrozenStagesMixin
from .pretrained import PretrainedInitMixin
from .resnet import pretrained_init_cfg

__all__ = ["Darknet", "DarknetResBlock"]

_LEAKY = dict(type="LeakyReLU", negative_slope=0.1)


class DarknetResBlock(nn.Module):
    """``x [N, C, H, W] -> x + conv2(conv1(x))`` with conv1 1x1 C -> C/2, conv2 3x3 C/2 -> C."""

    def __init__(self, in_channels: int, conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type="BN", requires_grad=True), act_cfg: dict = _LEAKY):
        super().__init__()
        if in_channels % 2:
            raise ConfigError(f"Darknet residual block: in_channels={in_channels} must be even")
        half = in_channels // 2
        cfg = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.conv1 = ConvModule(in_channels, half, 1, **cfg)
        self.conv2 = ConvModule(half, in_channels, 3, padding=1, **cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.conv1(x))


class Darknet(PretrainedInitMixin, FrozenStagesMixin, nn.Module):
    """Darknet-53 feature extractor.

    ``forward(x [N, 3, H, W])`` returns the outputs of the stages in ``out_indices``, where stage
    0 is ``conv1`` (32 channels, stride 1) and stage i = 1..5 is ``conv_res_block{i}``
    (64, 128, 256, 512, 1024 channels at strides 2, 4, 8, 16, 32). YOLOv3 takes (3, 4, 5).

    Args:
        frozen_stages: -1 freezes nothing; k >= 1 freezes stages 0..k-1 (no grads, eval mode),
            as MMDetection's ``_freeze_stages`` (``range(frozen_stages)``).
        norm_eval: keep every batch norm in eval mode in train() (MMDetection's default True).
        init_cfg: None (random init) or ``dict(type="Pretrained", checkpoint=path[, prefix])``;
            ``pretrained=path`` is a shorthand. The checkpoint is read by :meth:`init_weights`,
            which the trainer calls.
    """

    # depth -> (residual blocks per stage, (in, out) channels per stage)
    arch_settings = {
        53: ((1, 2, 8, 8, 4), ((32, 64), (64, 128), (128, 256), (256, 512), (512, 1024))),
    }

    def __init__(self, depth: int = 53, out_indices: Sequence[int] = (3, 4, 5), frozen_stages: int = -1,
                 conv_cfg: Optional[dict] = None, norm_cfg: dict = dict(type="BN", requires_grad=True),
                 act_cfg: dict = _LEAKY, norm_eval: bool = True, pretrained: Optional[str] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__()
        if depth not in self.arch_settings:
            raise ConfigError(f"Darknet depth={depth!r} is not one of {tuple(self.arch_settings)}")
        self.layers, self.channels = self.arch_settings[depth]
        num_stages = len(self.layers) + 1
        if not out_indices or not all(0 <= i < num_stages for i in out_indices):
            raise ConfigError(f"Darknet out_indices={tuple(out_indices)} must lie in 0..{num_stages - 1}")
        if not -1 <= frozen_stages <= num_stages:
            raise ConfigError(f"Darknet frozen_stages={frozen_stages} must be in -1..{num_stages}")
        self.depth = depth
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.init_cfg = pretrained_init_cfg("Darknet", pretrained, init_cfg)

        cfg = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.conv1 = ConvModule(3, 32, 3, padding=1, **cfg)
        self.cr_blocks = ["conv1"]
        for i, num_blocks in enumerate(self.layers):
            in_c, out_c = self.channels[i]
            stage = nn.Sequential()
            stage.add_module("conv", ConvModule(in_c, out_c, 3, stride=2, padding=1, **cfg))
            for j in range(num_blocks):
                stage.add_module(f"res{j}", DarknetResBlock(out_c, **cfg))
            self.add_module(f"conv_res_block{i + 1}", stage)
            self.cr_blocks.append(f"conv_res_block{i + 1}")
        stage_channels = [32] + [c[1] for c in self.channels]
        self.out_channels = [stage_channels[i] for i in self.out_indices]
        self._freeze_stages()

    def _frozen_modules(self) -> list:
        return [getattr(self, name) for name in self.cr_blocks[:max(self.frozen_stages, 0)]]

    def _init_random(self) -> None:
        # ConvModule's own init: Kaiming for LeakyReLU, BN weight 1
        for m in self.modules():
            if isinstance(m, ConvModule):
                m.init_weights()

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        outs = []
        for i, name in enumerate(self.cr_blocks):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
