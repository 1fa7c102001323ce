"""A ResNet stage run on pooled RoI features: the shared RoI head of C4 R-CNNs (MMDetection
``roi_heads/shared_heads/res_layer.py`` ``ResLayer``).

In a C4 detector the backbone stops after ResNet stage 3 (``res4``, stride 16); each RoI is
pooled from that map at 14x14 and stage 4 (``res5``, 3 blocks, the first striding 2) turns it
into a ``[K, 2048, 7, 7]`` feature shared by the box head (and, in Mask R-CNN C4, the mask head).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from detzoo.errors import ConfigError
from ...backbones.pretrained import PretrainedInitMixin
from ...layers.init import kaiming_init_convs_and_norms
from ...backbones.resnet import ResNet, make_res_layer, pretrained_init_cfg

__all__ = ["ResLayer"]


class ResLayer(PretrainedInitMixin, nn.Module):
    """ResNet stage ``stage`` (0-based: 3 is ``res5``/``layer4``) of a ResNet-``depth``.

    ``forward(x: [K, in_channels, S, S]) -> [K, out_channels, S / stride, S / stride]`` with
    ``in_channels = base_channels * 2**(stage-1) * expansion``, ``out_channels = base_channels *
    2**stage * expansion`` (ResNet-50/101 stage 3: 1024 -> 2048 channels, 14x14 -> 7x7).

    The stage is registered as ``layer{stage + 1}``, so the state-dict keys are MMDetection's
    (``roi_head.shared_head.layer4.0.conv1.weight``, ``...layer4.0.downsample.0.weight``) and a
    ResNet ImageNet checkpoint's ``layer4.*`` entries load into it directly.

    Args:
        depth: 50, 101 or 152 (Bottleneck ResNets; ``ResNet.arch_settings`` gives the block count).
        stage: 0-based stage index. stride / dilation: of the stage's first block.
        style: "pytorch" (stride on the 3x3 conv) or "caffe" (stride on the first 1x1).
        base_channels: channels of stage 0's inner convs (64 in every published model; smaller
            values give tiny test models, matching ``ResNet(base_channels=...)``).
        avg_down: ResNet-D shortcut (avg-pool then a stride-1 1x1 conv; ``downsample.{1,2}``).
        norm_cfg: norm layers (``dict(type="BN", requires_grad=False)`` for caffe weights,
            ``FrozenBN`` with eps 0 for Paddle's affine_channel).
        norm_eval: keep every BatchNorm in eval mode in ``train()`` (frozen statistics).
        init_cfg / pretrained: as :class:`~detzoo.models.backbones.ResNet`; read by
            :meth:`init_weights` (checkpoint keys ``layer{stage+1}.*``, e.g. an ImageNet ResNet).
    """

    def __init__(self, depth: int, stage: int = 3, stride: int = 2, dilation: int = 1,
                 style: str = "pytorch", norm_cfg: dict = dict(type="BN", requires_grad=True),
                 norm_eval: bool = True, with_cp: bool = False, dcn: dict | None = None,
                 avg_down: bool = False, base_channels: int = 64, pretrained: str | None = None,
                 init_cfg: dict | None = None):
        super().__init__()
        if depth not in ResNet.arch_settings:
            raise ConfigError(f"ResLayer depth={depth!r} is not one of {tuple(ResNet.arch_settings)}")
        block, stage_blocks = ResNet.arch_settings[depth]
        if not 0 <= stage < len(stage_blocks):
            raise ConfigError(f"ResLayer stage={stage!r} must be in 0..{len(stage_blocks) - 1}")
        self.init_cfg = pretrained_init_cfg(type(self).__name__, pretrained, init_cfg)
        self.depth, self.stage, self.norm_eval = depth, stage, norm_eval
        planes = base_channels * 2 ** stage
        inplanes = base_channels * 2 ** (stage - 1) * block.expansion if stage > 0 else base_channels
        self.in_channels, self.out_channels = inplanes, planes * block.expansion
        layer = make_res_layer(block, inplanes, planes, stage_blocks[stage], stride=stride,
                               dilation=dilation, style=style, avg_down=avg_down, with_cp=with_cp,
                               norm_cfg=norm_cfg, dcn=dcn)
        self.layer_name = f"layer{stage + 1}"
        self.add_module(self.layer_name, layer)
        self._init_random()

    def _init_random(self) -> None:
        # MMDetection's ResLayer default init_cfg: Kaiming on convs, constant 1 on norms (no
        # zero-initialised residual norms, unlike the ResNet backbone)
        kaiming_init_convs_and_norms(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, self.layer_name)(x)

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self
