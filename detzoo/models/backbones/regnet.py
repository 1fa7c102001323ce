"""RegNetX (Radosavovic et al. 2020) with MMDetection's module names (mmdet backbones/regnet.py).

Keys: ``conv1`` (3x3 stride-2 stem, ``stem_channels`` = 32) and ``bn1``, then ``layer{1..4}.{i}``
ResNeXt bottlenecks with expansion 1 (``conv{1,2,3}``, ``bn{1,2,3}``, ``downsample.{0,1}``) -
the names that mmdet's ``regnet2mmdet.py`` gives the pycls weights (``stem.conv`` -> ``conv1``,
``s1.b1.f.a`` -> ``layer1.0.conv1``, ``s1.b1.proj`` -> ``layer1.0.downsample.0`` ...). There is no
max-pool: every stage strides by 2, so stage i has stride ``2 ** (i + 2)``.

Widths and depths come from the arch parameters as in pycls/mmdet: block j has the continuous
width ``w0 + wa * j``, quantised to ``w0 * wm ** round(log(width / w0) / log(wm))`` and rounded
to a multiple of 8; runs of equal width form the stages; each stage width is then rounded to a
multiple of its group width (``min(group_w, width)``). RegNetX-3.2GF gives widths
[96, 192, 432, 1008], depths [2, 6, 15, 2] and 2/4/9/21 groups of 48 channels.
"""
from __future__ import annotations

import numpy as np
from torch import nn

from detzoo.errors import ConfigError
from detzoo.models.layers.conv_module import build_conv_layer
from detzoo.models.layers.norm import build_norm_layer, norm_name

from .resnet import ResNet, make_res_layer, pretrained_init_cfg
from .resnext import ResNeXtBottleneck

__all__ = ["RegNet", "RegNetBottleneck", "regnet_stages"]


class RegNetBottleneck(ResNeXtBottleneck):
    """ResNeXt bottleneck without the x4 expansion (mmdet sets ``expansion = 1`` on it)."""

    expansion = 1


def _quantize(number: float, divisor: int) -> int:
    """Closest multiple of ``divisor`` (mmdet ``RegNet.quantize_float``; ties to even)."""
    return int(round(number / divisor) * divisor)


def regnet_stages(w0: int, wa: float, wm: float, depth: int, group_w: int, bot_mul: float = 1.0,
                  divisor: int = 8):
    """Per-stage ``(widths, depths, group_widths)`` of a RegNet, as mmdet ``generate_regnet`` +
    ``get_stages_from_blocks`` + ``adjust_width_group``."""
    if not (wa >= 0 and w0 > 0 and wm > 1 and w0 % divisor == 0):
        raise ConfigError(f"RegNet arch needs wa >= 0, w0 > 0 divisible by {divisor} and wm > 1; "
                          f"got w0={w0}, wa={wa}, wm={wm}")
    widths_cont = np.arange(depth) * wa + w0
    exponents = np.round(np.log(widths_cont / w0) / np.log(wm))
    widths = np.round(w0 * np.power(wm, exponents) / divisor) * divisor
    block_widths = widths.astype(int).tolist()
    stage_widths, stage_depths = [], []
    for width in block_widths:
        if stage_widths and stage_widths[-1] == width:
            stage_depths[-1] += 1
        else:
            stage_widths.append(width)
            stage_depths.append(1)
    bottleneck = [int(w * bot_mul) for w in stage_widths]
    group_widths = [min(group_w, b) for b in bottleneck]
    bottleneck = [_quantize(b, g) for b, g in zip(bottleneck, group_widths)]
    stage_widths = [int(b / bot_mul) for b in bottleneck]
    return stage_widths, stage_depths, group_widths


class RegNet(ResNet):
    """RegNet feature extractor (RegNetX presets, or an explicit arch dict).

    ``forward(x [N, 3, H, W])`` returns the outputs of ``out_indices``; stage i has
    ``out_channels[i]`` channels and stride ``4 * 2 ** i`` (with the default strides).

    Args:
        arch: a name of :attr:`arch_settings` (``"regnetx_3.2gf"`` ...) or ``dict(w0, wa, wm,
            group_w, depth, bot_mul)``.
        Other arguments as :class:`ResNet` (``frozen_stages``, ``norm_cfg``, ``norm_eval``,
        ``conv_cfg``, ``dcn``/``stage_with_dcn``, ``init_cfg`` ...). ``base_channels`` is kept for
        config compatibility; as in mmdet it has no effect.
    """

    # mmdet RegNet.arch_settings (pycls RegNetX models)
    arch_settings = {
        "regnetx_400mf": dict(w0=24, wa=24.48, wm=2.54, group_w=16, depth=22, bot_mul=1.0),
        "regnetx_800mf": dict(w0=56, wa=35.73, wm=2.28, group_w=16, depth=16, bot_mul=1.0),
        "regnetx_1.6gf": dict(w0=80, wa=34.01, wm=2.25, group_w=24, depth=18, bot_mul=1.0),
        "regnetx_3.2gf": dict(w0=88, wa=26.31, wm=2.25, group_w=48, depth=25, bot_mul=1.0),
        "regnetx_4.0gf": dict(w0=96, wa=38.65, wm=2.43, group_w=40, depth=23, bot_mul=1.0),
        "regnetx_6.4gf": dict(w0=184, wa=60.83, wm=2.07, group_w=56, depth=17, bot_mul=1.0),
        "regnetx_8.0gf": dict(w0=80, wa=49.56, wm=2.88, group_w=120, depth=23, bot_mul=1.0),
        "regnetx_12gf": dict(w0=168, wa=73.36, wm=2.37, group_w=112, depth=19, bot_mul=1.0),
    }

    def __init__(self, arch, in_channels: int = 3, stem_channels: int = 32,
                 base_channels: int = 32, strides=(2, 2, 2, 2), dilations=(1, 1, 1, 1),
                 out_indices=(0, 1, 2, 3), style: str = "pytorch", deep_stem: bool = False,
                 avg_down: bool = False, frozen_stages: int = -1, conv_cfg: dict | None = None,
                 norm_cfg: dict = dict(type="BN", requires_grad=True), norm_eval: bool = True,
                 dcn: dict | None = None, stage_with_dcn=(False, False, False, False),
                 with_cp: bool = False, zero_init_residual: bool = True,
                 pretrained: str | None = None, init_cfg: dict | None = None):
        nn.Module.__init__(self)
        if isinstance(arch, str):
            if arch not in self.arch_settings:
                raise ConfigError(f"RegNet arch={arch!r} is not one of "
                                  f"{', '.join(self.arch_settings)}")
            arch = self.arch_settings[arch]
        keys = ("w0", "wa", "wm", "group_w", "depth", "bot_mul")
        if not isinstance(arch, dict) or any(k not in arch for k in keys):
            raise ConfigError(f"RegNet arch={arch!r} must be a preset name or a dict with "
                              f"{', '.join(keys)}")
        widths, depths, group_widths = regnet_stages(
            arch["w0"], arch["wa"], arch["wm"], arch["depth"], arch["group_w"], arch["bot_mul"])
        num_stages = len(widths)
        if not 1 <= num_stages <= 4:
            raise ConfigError(f"RegNet arch {arch} gives {num_stages} stages; 1..4 are supported")
        if len(strides) != num_stages or len(dilations) != num_stages:
            raise ConfigError(f"RegNet strides={tuple(strides)} and dilations={tuple(dilations)} "
                              f"must both have {num_stages} entries (one per stage)")
        if not out_indices or not all(0 <= i < num_stages for i in out_indices):
            raise ConfigError(f"RegNet out_indices={tuple(out_indices)} must lie in "
                              f"0..{num_stages - 1}")
        if deep_stem:
            raise ConfigError("RegNet has a single 3x3 stem conv; deep_stem is not supported")
        if not -1 <= frozen_stages <= num_stages:
            raise ConfigError(f"RegNet frozen_stages={frozen_stages} must be in "
                              f"-1..{num_stages}")
        if dcn is not None and (not isinstance(dcn, dict)
                                or dcn.get("type") not in ("DCN", "DCNv2")):
            raise ConfigError(f"RegNet dcn={dcn!r} must be None or dict(type='DCN'|'DCNv2', "
                              "deform_groups=1, fallback_on_stride=False)")
        if dcn is not None and len(stage_with_dcn) != num_stages:
            raise ConfigError(f"RegNet stage_with_dcn={tuple(stage_with_dcn)} must have "
                              f"{num_stages} entries")
        self.init_cfg = pretrained_init_cfg("RegNet", pretrained, init_cfg)
        self.arch = dict(arch)
        self.stage_widths, self.stage_blocks = widths, depths
        self.group_widths = group_widths
        self.depth = sum(depths)
        self.out_indices = tuple(out_indices)
        self.style = style
        self.deep_stem = False
        self.avg_down = avg_down
        self.frozen_stages = frozen_stages
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.norm_eval = norm_eval
        self.dcn = dcn
        self.stage_with_dcn = tuple(stage_with_dcn)
        self.zero_init_residual = zero_init_residual
        self.base_channels = base_channels
        self.block = RegNetBottleneck

        self.conv1 = build_conv_layer(conv_cfg, in_channels, stem_channels, 3, stride=2,
                                      padding=1, bias=False)
        self.norm1_name = norm_name(norm_cfg, 1)
        self.add_module(self.norm1_name, build_norm_layer(norm_cfg, stem_channels))
        self.relu = nn.ReLU(inplace=True)

        self.res_layers = []
        inplanes = stem_channels
        for i, (width, blocks, group_w) in enumerate(zip(widths, depths, group_widths)):
            bottleneck_width = int(round(width * arch["bot_mul"]))
            layer = make_res_layer(
                self.block, inplanes, width, blocks, stride=strides[i], dilation=dilations[i],
                style=style, avg_down=avg_down, with_cp=with_cp, norm_cfg=norm_cfg,
                conv_cfg=conv_cfg, dcn=dcn if dcn is not None and stage_with_dcn[i] else None,
                groups=bottleneck_width // group_w, base_width=group_w, base_channels=width)
            self.add_module(f"layer{i + 1}", layer)
            self.res_layers.append(f"layer{i + 1}")
            inplanes = width
        self.feat_dim = inplanes
        self.out_channels = [widths[i] for i in self.out_indices]

        self._init_random()
        self._freeze_stages()

    def forward(self, x):
        x = self.relu(self.norm1(self.conv1(x)))
        outs = []
        for i, name in enumerate(self.res_layers):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
