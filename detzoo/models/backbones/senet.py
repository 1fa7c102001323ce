"""SENet-154-vd and the SE-ResNeXt-vd family as PaddleDetection / PaddleClas define them.

PaddleDetection's ``SENet`` (``static/ppdet/modeling/backbones/senet.py``, depth 152, groups 64,
group_width 4, variant 'd'; the ``faster/mask_rcnn_se154_vd_fpn_s1x`` rows) and PaddleClas'
``SENet154_vd`` (``ppcls/arch/backbone/model_zoo/se_resnext_vd.py``, its ImageNet weights) are
the same network:

* a ResNet-vd deep stem: three 3x3 ConvBN-ReLU (64 stride 2, 64, 128) and a 3x3 stride-2 max pool;
* four stages of 3 / 8 / 36 / 3 grouped bottlenecks whose 1x1 ``conv1``, 3x3 ``conv2`` (64
  groups, carries the stride) and 1x1 ``conv3`` all have 256 / 512 / 1024 / 2048 channels --
  exactly the widths of a ResNeXt-152 64x4d bottleneck (``floor(planes * 4 / 64) * 64`` with
  planes 64 .. 512, expansion 4). This is *not* Hu et al.'s SENet-154 (whose conv1 is half as
  wide and whose shortcuts are 3x3 convs): Paddle's ``std_senet`` is False for these rows;
* a squeeze-and-excitation layer on each residual branch before the addition: global average
  pool, fc C -> int(C / 16) + ReLU, fc -> C + sigmoid, channel-wise product;
* the projection shortcut of each stage's first block: a 1x1 ConvBN in stage 1, and (ResNet-D)
  a 2x2 stride-2 average pool (ceil mode, padding excluded from the mean) then a stride-1 1x1
  ConvBN in stages 2..4.

So :class:`SENet` is :class:`~detzoo.models.backbones.resnext.ResNeXt` with ``deep_stem``,
``avg_down`` and an SE layer per block; keys follow detzoo's ResNet (``stem.{0,1,3,4,6,7}``,
``layer{1..4}.{i}.conv{1,2,3}/bn{1,2,3}/downsample.{1,2}``) plus ``layer*.*.se.squeeze`` and
``se.excitation`` (``nn.Linear``: weight ``[out, in]``, the transpose of Paddle's fc weight).
:func:`detzoo.zoo.converters.paddle_single_stage.senet_paddle_keys` gives the Paddle name of every
key. Parameters of SENet-154-vd: 119.69 M (plus 0.30 M BatchNorm statistics; PaddleClas
publishes 122.03 M with its 1000-class fc).
"""
from __future__ import annotations

import torch
from torch import nn

from detzoo.errors import ConfigError

from .resnet import make_res_layer
from .resnext import ResNeXt, ResNeXtBottleneck

__all__ = ["SELayer", "SEResNeXtBottleneck", "SENet"]


class SELayer(nn.Module):
    """Squeeze-and-excitation on ``x [N, C, H, W]``:
    ``x * sigmoid(excitation(relu(squeeze(mean_hw(x)))))[:, :, None, None]``, with
    ``squeeze: C -> C // ratio`` and ``excitation: C // ratio -> C`` fully connected layers
    (Paddle: ``int(C / reduction_ratio)`` hidden units, fc with bias)."""

    def __init__(self, channels: int, ratio: int = 16):
        super().__init__()
        hidden = int(channels / ratio)
        if hidden < 1:
            raise ConfigError(f"SELayer: {channels} channels with ratio {ratio} leave no hidden unit")
        self.squeeze = nn.Linear(channels, hidden)
        self.excitation = nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.mean(dim=(2, 3))
        weight = torch.sigmoid(self.excitation(torch.relu(self.squeeze(pooled))))
        return x * weight[:, :, None, None]


class SEResNeXtBottleneck(ResNeXtBottleneck):
    """ResNeXt bottleneck whose residual branch (after ``bn3``) goes through an :class:`SELayer`
    of ``se_ratio`` before the shortcut is added."""

    def __init__(self, inplanes: int, planes: int, se_ratio: int = 16, **kwargs):
        super().__init__(inplanes, planes, **kwargs)
        self.se = SELayer(planes * self.expansion, se_ratio)

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.se(super()._residual(x))


class SENet(ResNeXt):
    """SE-ResNeXt-vd; the defaults build SENet-154-vd (depth 152, 64 groups x 4d, SE ratio 16).

    ``forward(x [N, 3, H, W])`` returns the stage outputs of ``out_indices`` (256, 512, 1024,
    2048 channels at strides 4, 8, 16, 32). Every :class:`~detzoo.models.backbones.ResNet`
    argument applies (``frozen_stages``, ``norm_cfg``, ``norm_eval``, ``init_cfg`` ...).
    ``groups=32, base_width=4`` with depth 50 / 101 gives PaddleClas' SE_ResNeXt50/101_vd_32x4d.
    Paddle's detection rows freeze the norms (``affine_channel``): use
    ``norm_cfg=dict(type="BN", requires_grad=False), norm_eval=True``.
    """

    arch_settings = {
        50: (SEResNeXtBottleneck, (3, 4, 6, 3)),
        101: (SEResNeXtBottleneck, (3, 4, 23, 3)),
        152: (SEResNeXtBottleneck, (3, 8, 36, 3)),
    }

    def __init__(self, depth: int = 152, groups: int = 64, base_width: int = 4, se_ratio: int = 16,
                 stem_channels: int = 128, deep_stem: bool = True, avg_down: bool = True, **kwargs):
        if not isinstance(se_ratio, int) or se_ratio < 1:
            raise ConfigError(f"SENet se_ratio={se_ratio!r} must be a positive integer")
        self.se_ratio = se_ratio  # read by make_res_layer during ResNet.__init__
        super().__init__(depth, groups=groups, base_width=base_width, stem_channels=stem_channels,
                         deep_stem=deep_stem, avg_down=avg_down, **kwargs)

    def make_res_layer(self, *args, **kwargs):
        return make_res_layer(*args, groups=self.groups, base_width=self.base_width,
                              base_channels=self.base_channels, se_ratio=self.se_ratio, **kwargs)
