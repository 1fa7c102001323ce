"""ResNet backbone with MMDetection 2.x/3.x module names (torchvision-compatible keys).

Keys: ``conv1``/``bn1`` stem (or ``stem.{0..8}`` with ``deep_stem``), ``layer{1..4}.{i}`` blocks
with ``conv{1,2,3}``/``bn{1,2,3}`` (``gn*`` with GN) and ``downsample.0`` conv,
``downsample.1`` norm (``downsample.0`` avg-pool, ``.1`` conv, ``.2`` norm with ``avg_down`` on
stride-2 stages). A deformable ``conv2`` (``dcn``) adds ``conv2.conv_offset.{weight,bias}``;
``conv_cfg=dict(type="ConvWS")`` (weight standardisation) keeps the keys. Follows mmdet
``models/backbones/resnet.py`` and ``models/layers/res_layer.py``.
"""
from __future__ import annotations


import torch
import torch.utils.checkpoint as checkpoint_utils
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from detzoo.errors import ConfigError
from detzoo.models.layers.conv_module import build_conv_layer
from detzoo.models.layers.init import kaiming_init_convs_and_norms
from detzoo.models.layers.norm import build_norm_layer, norm_name
from detzoo.ops.deform_conv import DeformConv2d, ModulatedDeformConv2d
from .freezing import FrozenStagesMixin
from .pretrained import PretrainedInitMixin

__all__ = ["BasicBlock", "Bottleneck", "ResNet", "make_res_layer", "pretrained_init_cfg"]


class _Block(nn.Module):
    """Shared plumbing of the residual blocks: named norms and optional grad checkpointing."""

    expansion = 1

    def _add_norm(self, norm_cfg: dict, channels: int, index: int) -> None:
        name = norm_name(norm_cfg, index)
        setattr(self, f"norm{index}_name", name)
        self.add_module(name, build_norm_layer(norm_cfg, channels))

    @property
    def norm1(self) -> nn.Module:
        return getattr(self, self.norm1_name)

    @property
    def norm2(self) -> nn.Module:
        return getattr(self, self.norm2_name)

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def inner(x):
            identity = x if self.downsample is None else self.downsample(x)
            return self._residual(x) + identity

        if self.with_cp and x.requires_grad:
            out = checkpoint_utils.checkpoint(inner, x, use_reentrant=False)
        else:
            out = inner(x)
        return self.relu(out)


class BasicBlock(_Block):
    """Two 3x3 convs (``conv1`` carries stride and dilation, as in mmdet); ``style`` is unused."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: nn.Module | None = None, style: str = "pytorch",
                 with_cp: bool = False, norm_cfg: dict = dict(type="BN"),
                 conv_cfg: dict | None = None, dcn: dict | None = None):
        super().__init__()
        if dcn is not None:
            raise ConfigError("ResNet dcn needs Bottleneck blocks (depth 50/101/152); "
                              "BasicBlock has none, as in mmdet")
        self.conv1 = build_conv_layer(conv_cfg, inplanes, planes, 3, stride=stride,
                                      padding=dilation, dilation=dilation, bias=False)
        self._add_norm(norm_cfg, planes, 1)
        self.conv2 = build_conv_layer(conv_cfg, planes, planes, 3, padding=1, bias=False)
        self._add_norm(norm_cfg, planes, 2)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride, self.dilation, self.with_cp = stride, dilation, with_cp

    def _residual(self, x):
        out = self.relu(self.norm1(self.conv1(x)))
        return self.norm2(self.conv2(out))


class Bottleneck(_Block):
    """1x1 -> 3x3 -> 1x1 (x4 channels). ``pytorch`` style strides the 3x3 conv2, ``caffe``
    style the first 1x1 conv1.

    ``width`` (default ``planes``) is the channel count of the two inner convs and ``groups``
    that of the 3x3 conv (ResNeXt, RegNet). ``dcn`` replaces conv2 by the deformable conv it
    describes (``dict(type="DCN"|"DCNv2", deform_groups=1, fallback_on_stride=False)``); with
    ``fallback_on_stride`` a block whose conv2 strides keeps a plain conv.
    """

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: nn.Module | None = None, style: str = "pytorch",
                 with_cp: bool = False, norm_cfg: dict = dict(type="BN"),
                 conv_cfg: dict | None = None, dcn: dict | None = None, groups: int = 1,
                 width: int | None = None):
        super().__init__()
        if style not in ("pytorch", "caffe"):
            raise ConfigError(f"ResNet style {style!r} must be 'pytorch' or 'caffe'")
        width = planes if width is None else width
        conv1_stride, conv2_stride = (1, stride) if style == "pytorch" else (stride, 1)
        self.conv1 = build_conv_layer(conv_cfg, inplanes, width, 1, stride=conv1_stride,
                                      bias=False)
        self._add_norm(norm_cfg, width, 1)
        conv2_cfg = conv_cfg
        if dcn is not None:
            dcn = dict(dcn)
            # mmdet pops the key from a dict shared by all blocks, so only the first DCN block
            # of the network falls back; we apply the documented rule (fall back when strided)
            if not (dcn.pop("fallback_on_stride", False) and conv2_stride > 1):
                if conv_cfg is not None:
                    raise ConfigError("ResNet: conv_cfg must be None when dcn is set "
                                      "(mmdet asserts the same)")
                conv2_cfg = dcn
        self.conv2 = build_conv_layer(conv2_cfg, width, width, 3, stride=conv2_stride,
                                      padding=dilation, dilation=dilation, groups=groups,
                                      bias=False)
        self._add_norm(norm_cfg, width, 2)
        self.conv3 = build_conv_layer(conv_cfg, width, planes * self.expansion, 1, bias=False)
        self._add_norm(norm_cfg, planes * self.expansion, 3)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride, self.dilation, self.style, self.with_cp = stride, dilation, style, with_cp

    @property
    def norm3(self) -> nn.Module:
        return getattr(self, self.norm3_name)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        # mmdet 1.x kept the DCN offset conv beside conv2 (``conv2_offset.*``); mmcv's packs
        # rename it to ``conv2.conv_offset.*``. Done here, in the parent, because torch hands
        # each child only the keys under its own prefix.
        if hasattr(self.conv2, "conv_offset"):
            for name in ("weight", "bias"):
                old, new = f"{prefix}conv2_offset.{name}", f"{prefix}conv2.conv_offset.{name}"
                if old in state_dict and new not in state_dict:
                    state_dict[new] = state_dict.pop(old)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def _residual(self, x):
        out = self.relu(self.norm1(self.conv1(x)))
        out = self.relu(self.norm2(self.conv2(out)))
        return self.norm3(self.conv3(out))


def make_res_layer(block: type, inplanes: int, planes: int, num_blocks: int, stride: int = 1,
                   dilation: int = 1, style: str = "pytorch", avg_down: bool = False,
                   with_cp: bool = False, norm_cfg: dict = dict(type="BN"),
                   conv_cfg: dict | None = None, dcn: dict | None = None,
                   force_downsample: bool = False, **block_kwargs) -> nn.Sequential:
    """One stage: ``num_blocks`` blocks, the first one striding and projecting the shortcut.

    With ``avg_down`` (ResNet-D) a stride-s shortcut is AvgPool(s, ceil_mode, no padded zeros in
    the mean) followed by a stride-1 1x1 conv, as in mmdet ``ResLayer``. ``block_kwargs`` go to
    every block (ResNeXt's ``groups``/``base_width``/``base_channels``). ``force_downsample``
    projects the first block's shortcut even when its shape is unchanged.
    """
    out_planes = planes * block.expansion
    downsample = None
    if stride != 1 or inplanes != out_planes or force_downsample:
        layers = []
        conv_stride = stride
        if avg_down and stride != 1:
            conv_stride = 1
            layers.append(nn.AvgPool2d(kernel_size=stride, stride=stride, ceil_mode=True,
                                       count_include_pad=False))
        layers += [build_conv_layer(conv_cfg, inplanes, out_planes, 1, stride=conv_stride,
                                    bias=False),
                   build_norm_layer(norm_cfg, out_planes)]
        downsample = nn.Sequential(*layers)
    common = dict(dilation=dilation, style=style, with_cp=with_cp, norm_cfg=norm_cfg,
                  conv_cfg=conv_cfg, dcn=dcn, **block_kwargs)
    blocks = [block(inplanes, planes, stride=stride, downsample=downsample, **common)]
    blocks += [block(out_planes, planes, stride=1, **common) for _ in range(1, num_blocks)]
    return nn.Sequential(*blocks)


def pretrained_init_cfg(owner: str, pretrained: str | None, init_cfg: dict | None) -> dict | None:
    """Check ``init_cfg`` (None or ``dict(type="Pretrained", checkpoint=path[, prefix])``) and
    fold the ``pretrained=path`` shorthand into it."""
    if pretrained is not None:
        if init_cfg is not None:
            raise ConfigError(f"{owner}: give either pretrained or init_cfg, not both")
        init_cfg = dict(type="Pretrained", checkpoint=pretrained)
    if init_cfg is not None and (not isinstance(init_cfg, dict)
                                 or init_cfg.get("type") != "Pretrained"
                                 or "checkpoint" not in init_cfg):
        raise ConfigError(f"{owner} init_cfg={init_cfg!r} must be None or "
                          "dict(type='Pretrained', checkpoint=path)")
    return init_cfg


class ResNet(PretrainedInitMixin, FrozenStagesMixin, nn.Module):
    """ResNet-{18,34,50,101,152} feature extractor.

    ``forward(x: [N, in_channels, H, W])`` returns a tuple with the output of each stage in
    ``out_indices``; stage i has ``base_channels * 2**i * expansion`` channels and (with default
    strides) stride ``4 * 2**i``.

    Args:
        frozen_stages: -1 freezes nothing; k >= 0 freezes the stem and stages 1..k (no grads,
            kept in eval mode).
        norm_eval: keep every batch norm in eval mode (frozen running statistics) in train().
        zero_init_residual: the last norm of each residual block starts at weight 0.
        conv_cfg: conv type of every conv (None = ``nn.Conv2d``; ``dict(type="ConvWS")`` for
            weight standardisation), see :func:`~detzoo.models.layers.build_conv_layer`.
        dcn: deformable conv2 for the Bottleneck stages flagged in ``stage_with_dcn``, e.g.
            ``dict(type="DCNv2", deform_groups=1, fallback_on_stride=False)``; its
            ``conv_offset`` starts at zero, so a fresh DCN stage computes a plain conv (DCN) or
            half of it (DCNv2, mask sigmoid(0)).
        first_block_projection: give ``layer1.0`` a 1x1 conv + norm shortcut
            (``downsample.{0,1}``) although its shape is unchanged, as PaddleDetection's and
            PaddleClas' ResNet-18/34 do (``res2a_branch1``; ``static/ppdet/modeling/backbones/
            resnet.py`` ``_shortcut``: ``depth < 50 and is_first``).
        init_cfg: None (random init) or ``dict(type="Pretrained", checkpoint=path,
            prefix=optional key prefix to select and strip)``; ``pretrained=path`` is a
            shorthand. The constructor only applies the random init; as in MMDetection, the
            checkpoint is read by :meth:`init_weights`, which the trainer calls.
    """

    arch_settings = {
        18: (BasicBlock, (2, 2, 2, 2)),
        34: (BasicBlock, (3, 4, 6, 3)),
        50: (Bottleneck, (3, 4, 6, 3)),
        101: (Bottleneck, (3, 4, 23, 3)),
        152: (Bottleneck, (3, 8, 36, 3)),
    }

    def __init__(self, depth: int, in_channels: int = 3, stem_channels: int = 64,
                 base_channels: int = 64, num_stages: int = 4, strides=(1, 2, 2, 2),
                 dilations=(1, 1, 1, 1), out_indices=(0, 1, 2, 3), style: str = "pytorch",
                 deep_stem: bool = False, avg_down: bool = False, frozen_stages: int = -1,
                 norm_cfg: dict = dict(type="BN", requires_grad=True), norm_eval: bool = True,
                 with_cp: bool = False, zero_init_residual: bool = True,
                 conv_cfg: dict | None = None, dcn: dict | None = None,
                 stage_with_dcn=(False, False, False, False),
                 pretrained: str | None = None, init_cfg: dict | None = None,
                 first_block_projection: bool = False):
        super().__init__()
        if depth not in self.arch_settings:
            raise ConfigError(f"{type(self).__name__} depth={depth!r} is not one of "
                              f"{tuple(self.arch_settings)}")
        if not 1 <= num_stages <= 4:
            raise ConfigError(f"ResNet num_stages={num_stages} must be in 1..4")
        if len(strides) != num_stages or len(dilations) != num_stages:
            raise ConfigError(f"ResNet strides={tuple(strides)} and dilations="
                              f"{tuple(dilations)} must both have num_stages={num_stages} entries")
        if not out_indices or not all(0 <= i < num_stages for i in out_indices):
            raise ConfigError(f"ResNet out_indices={tuple(out_indices)} must lie in "
                              f"0..{num_stages - 1}")
        if style not in ("pytorch", "caffe"):
            raise ConfigError(f"ResNet style={style!r} must be 'pytorch' or 'caffe'")
        if not -1 <= frozen_stages <= num_stages:
            raise ConfigError(f"ResNet frozen_stages={frozen_stages} must be in -1..{num_stages}")
        if dcn is not None and (not isinstance(dcn, dict)
                                or dcn.get("type") not in ("DCN", "DCNv2")):
            raise ConfigError(f"ResNet dcn={dcn!r} must be None or dict(type='DCN'|'DCNv2', "
                              "deform_groups=1, fallback_on_stride=False)")
        if dcn is not None and len(stage_with_dcn) != num_stages:
            raise ConfigError(f"ResNet stage_with_dcn={tuple(stage_with_dcn)} must have "
                              f"num_stages={num_stages} entries")
        init_cfg = pretrained_init_cfg(type(self).__name__, pretrained, init_cfg)
        self.depth = depth
        self.out_indices = tuple(out_indices)
        self.style = style
        self.deep_stem = deep_stem
        self.avg_down = avg_down
        self.frozen_stages = frozen_stages
        self.norm_cfg = norm_cfg
        self.norm_eval = norm_eval
        self.zero_init_residual = zero_init_residual
        self.conv_cfg = conv_cfg
        self.dcn = dcn
        self.stage_with_dcn = tuple(stage_with_dcn)
        self.init_cfg = init_cfg
        self.block, stage_blocks = self.arch_settings[depth]
        self.stage_blocks = stage_blocks[:num_stages]
        self.base_channels = base_channels

        self._make_stem(in_channels, stem_channels)
        self.res_layers = []
        inplanes = stem_channels
        for i, num_blocks in enumerate(self.stage_blocks):
            planes = base_channels * 2 ** i
            extra = dict(force_downsample=True) if first_block_projection and i == 0 else {}
            layer = self.make_res_layer(
                self.block, inplanes, planes, num_blocks, stride=strides[i],
                dilation=dilations[i], style=style, avg_down=avg_down, with_cp=with_cp,
                norm_cfg=norm_cfg, conv_cfg=conv_cfg,
                dcn=dcn if dcn is not None and self.stage_with_dcn[i] else None, **extra)
            inplanes = planes * self.block.expansion
            self.add_module(f"layer{i + 1}", layer)
            self.res_layers.append(f"layer{i + 1}")
        self.feat_dim = inplanes
        self.out_channels = [base_channels * 2 ** i * self.block.expansion
                             for i in self.out_indices]

        self._init_random()
        self._freeze_stages()

    def make_res_layer(self, *args, **kwargs) -> nn.Sequential:
        """Build one stage (subclasses add block arguments, e.g. ResNeXt's groups)."""
        return make_res_layer(*args, **kwargs)

    def _make_stem(self, in_channels: int, stem_channels: int) -> None:
        if self.deep_stem:
            # ResNet-C stem: three 3x3 convs (stem.0/3/6) with norms (stem.1/4/7) and ReLUs
            half = stem_channels // 2
            conv_cfg = self.conv_cfg
            self.stem = nn.Sequential(
                build_conv_layer(conv_cfg, in_channels, half, 3, stride=2, padding=1, bias=False),
                build_norm_layer(self.norm_cfg, half), nn.ReLU(inplace=True),
                build_conv_layer(conv_cfg, half, half, 3, stride=1, padding=1, bias=False),
                build_norm_layer(self.norm_cfg, half), nn.ReLU(inplace=True),
                build_conv_layer(conv_cfg, half, stem_channels, 3, stride=1, padding=1,
                                 bias=False),
                build_norm_layer(self.norm_cfg, stem_channels), nn.ReLU(inplace=True))
        else:
            self.conv1 = build_conv_layer(self.conv_cfg, in_channels, stem_channels, 7, stride=2,
                                          padding=3, bias=False)
            self.norm1_name = norm_name(self.norm_cfg, 1)
            self.add_module(self.norm1_name, build_norm_layer(self.norm_cfg, stem_channels))
            self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

    @property
    def norm1(self) -> nn.Module:
        return getattr(self, self.norm1_name)

    def _frozen_modules(self) -> list[nn.Module]:
        if self.frozen_stages < 0:
            return []
        frozen = [self.stem] if self.deep_stem else [self.conv1, self.norm1]
        return frozen + [getattr(self, f"layer{i}") for i in range(1, self.frozen_stages + 1)]

    def _init_random(self) -> None:
        # mmdet ResNet init_cfg: Kaiming(Conv2d) = normal, fan_out, ReLU gain; Constant(1) on
        # norms; Constant(0) on norm3 (Bottleneck) / norm2 (BasicBlock) when zero_init_residual.
        # Deformable convs keep mmcv's own init, their conv_offset zero (mmdet 2.x ResNet
        # re-zeroes conv2.conv_offset after the Kaiming pass).
        kaiming_init_convs_and_norms(self)
        for m in self.modules():
            if isinstance(m, (DeformConv2d, ModulatedDeformConv2d)):
                m.init_weights()
        if self.zero_init_residual:
            for m in self.modules():
                last = (m.norm3 if isinstance(m, Bottleneck)
                        else m.norm2 if isinstance(m, BasicBlock) else None)
                if last is not None and getattr(last, "weight", None) is not None:
                    nn.init.zeros_(last.weight)
                    nn.init.zeros_(last.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.deep_stem:
            x = self.stem(x)
        else:
            x = self.relu(self.norm1(self.conv1(x)))
        x = self.maxpool(x)
        outs = []
        for i, name in enumerate(self.res_layers):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
