"""Conv -> norm -> activation block with mmcv ``ConvModule`` attribute names.

Submodules are ``conv`` (``nn.Conv2d``, or the ``conv_cfg`` type: ``ConvWS``, ``DCN``,
``DCNv2``, see :func:`build_conv_layer`), the norm layer under its mmcv abbreviation (``bn`` or
``gn``, see :func:`detzoo.models.layers.norm.norm_name`) and ``activate``, so MMDetection keys
like ``neck.lateral_convs.0.conv.weight`` or ``bbox_head.cls_convs.0.gn.weight`` load as they are.
"""
from __future__ import annotations

import torch
from torch import nn

from detzoo.errors import ConfigError
from detzoo.ops.deform_conv import DeformConv2dPack, ModulatedDeformConv2dPack

from .conv_ws import ConvWS2d
from .norm import build_norm_layer, norm_name

__all__ = ["CONV_TYPES", "ConvModule", "build_activation_layer", "build_conv_layer"]

# Activations whose torch class takes an ``inplace`` flag (mmcv passes ``inplace`` to all but
# Tanh, PReLU, Sigmoid, HSigmoid, Swish and GELU).
_ACTIVATIONS = {
    "ReLU": (nn.ReLU, True),
    "LeakyReLU": (nn.LeakyReLU, True),
    "ReLU6": (nn.ReLU6, True),
    "ELU": (nn.ELU, True),
    "SiLU": (nn.SiLU, True),
    "HSwish": (nn.Hardswish, True),
    "PReLU": (nn.PReLU, False),
    "Sigmoid": (nn.Sigmoid, False),
    "Tanh": (nn.Tanh, False),
    "GELU": (nn.GELU, False),
    "Swish": (nn.SiLU, False),
}


def build_activation_layer(act_cfg: dict, inplace: bool = True) -> nn.Module:
    """``act_cfg = dict(type="ReLU"|"LeakyReLU"|..., **kwargs)`` -> activation module."""
    if not isinstance(act_cfg, dict) or act_cfg.get("type") not in _ACTIVATIONS:
        raise ConfigError(
            f"act_cfg {act_cfg!r}: type must be one of {', '.join(_ACTIVATIONS)}")
    act_cls, takes_inplace = _ACTIVATIONS[act_cfg["type"]]
    kwargs = {k: v for k, v in act_cfg.items() if k != "type"}
    if takes_inplace:
        kwargs.setdefault("inplace", inplace)
    try:
        return act_cls(**kwargs)
    except TypeError as err:
        raise ConfigError(f"act_cfg {act_cfg!r}: {err}") from None


# mmcv CONV_LAYERS names: Conv/Conv2d, ConvWS (cnn/bricks/conv_ws.py), DCN and DCNv2
# (ops/deform_conv.py DeformConv2dPack, ops/modulated_deform_conv.py ModulatedDeformConv2dPack)
CONV_TYPES = {"Conv": nn.Conv2d, "Conv2d": nn.Conv2d, "ConvWS": ConvWS2d,
              "DCN": DeformConv2dPack, "DCNv2": ModulatedDeformConv2dPack}


def build_conv_layer(conv_cfg: dict | None, *args, **kwargs) -> nn.Module:
    """``conv_cfg`` (None = plain ``nn.Conv2d``) -> conv layer built with ``*args, **kwargs``.

    Types: ``"Conv"``/``"Conv2d"`` (``nn.Conv2d``), ``"ConvWS"`` (weight standardisation,
    :class:`~detzoo.models.layers.conv_ws.ConvWS2d`), ``"DCN"`` / ``"DCNv2"`` (deformable conv
    v1 / modulated v2 predicting their own offsets, :mod:`detzoo.ops.deform_conv`). Other keys
    of ``conv_cfg`` are constructor arguments (e.g. ``deform_groups``; the old name
    ``deformable_groups`` is accepted, as mmcv does).
    """
    types = CONV_TYPES
    if conv_cfg is None:
        return nn.Conv2d(*args, **kwargs)
    if not isinstance(conv_cfg, dict) or conv_cfg.get("type") not in types:
        raise ConfigError(f"conv_cfg {conv_cfg!r}: type must be one of {', '.join(types)}")
    extra = {k: v for k, v in conv_cfg.items() if k != "type"}
    if "deformable_groups" in extra:
        extra.setdefault("deform_groups", extra.pop("deformable_groups"))
    if conv_cfg["type"] == "DCN" and kwargs.get("bias"):
        raise ConfigError(f"conv_cfg {conv_cfg!r}: DCN (v1) has no bias; give bias=False (a "
                          "norm after it) or use DCNv2")
    try:
        return types[conv_cfg["type"]](*args, **{**kwargs, **extra})
    except (TypeError, ValueError) as err:
        raise ConfigError(f"conv_cfg {conv_cfg!r}: {err}") from None


class ConvModule(nn.Module):
    """``x [N, in_channels, H, W] -> [N, out_channels, H', W']`` through conv, norm, activation.

    Args:
        bias: ``"auto"`` gives the conv a bias iff there is no norm layer.
        norm_cfg: see :func:`build_norm_layer`; None for no norm.
        act_cfg: see :func:`build_activation_layer`; None for no activation.
        inplace: default ``inplace`` flag of the activation.
        order: permutation of ``("conv", "norm", "act")``; the norm gets ``in_channels`` when
            it comes before the conv.

    Initialisation follows mmcv: Kaiming-normal conv weights (fan_out, gain for ReLU, or for
    LeakyReLU with its slope), zero bias, norm weight 1 and bias 0.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool | str = "auto",
                 conv_cfg: dict | None = None, norm_cfg: dict | None = None,
                 act_cfg: dict | None = dict(type="ReLU"), inplace: bool = True,
                 order: tuple = ("conv", "norm", "act")):
        super().__init__()
        if sorted(order) != ["act", "conv", "norm"]:
            raise ConfigError(f"ConvModule order {order!r} must be a permutation of conv/norm/act")
        if bias != "auto" and not isinstance(bias, bool):
            raise ConfigError(f"ConvModule bias={bias!r} must be 'auto', True or False")
        self.order = tuple(order)
        self.act_cfg = act_cfg
        self.with_norm = norm_cfg is not None
        self.with_activation = act_cfg is not None
        self.with_bias = (not self.with_norm) if bias == "auto" else bias
        self.conv = build_conv_layer(
            conv_cfg, in_channels, out_channels, kernel_size, stride=stride, padding=padding,
            dilation=dilation, groups=groups, bias=self.with_bias)
        self.norm_name = None
        if self.with_norm:
            norm_channels = (out_channels if order.index("norm") > order.index("conv")
                             else in_channels)
            self.norm_name = norm_name(norm_cfg)
            self.add_module(self.norm_name, build_norm_layer(norm_cfg, norm_channels))
        if self.with_activation:
            self.activate = build_activation_layer(act_cfg, inplace=inplace)
        self.init_weights()

    @property
    def norm(self) -> nn.Module | None:
        return getattr(self, self.norm_name) if self.norm_name else None

    def init_weights(self) -> None:
        if self.with_activation and self.act_cfg["type"] == "LeakyReLU":
            nonlinearity, slope = "leaky_relu", self.act_cfg.get("negative_slope", 0.01)
        else:
            nonlinearity, slope = "relu", 0.0
        if hasattr(self.conv, "init_weights"):
            # deformable convs keep their own init (zero offsets), as in mmcv's ConvModule
            self.conv.init_weights()
        else:
            nn.init.kaiming_normal_(self.conv.weight, a=slope, mode="fan_out",
                                    nonlinearity=nonlinearity)
            if self.conv.bias is not None:
                nn.init.zeros_(self.conv.bias)
        norm = self.norm
        if norm is not None and getattr(norm, "weight", None) is not None:
            with torch.no_grad():
                norm.weight.fill_(1.0)
                norm.bias.zero_()

    def forward(self, x: torch.Tensor, activate: bool = True, norm: bool = True) -> torch.Tensor:
        for layer in self.order:
            if layer == "conv":
                x = self.conv(x)
            elif layer == "norm" and norm and self.with_norm:
                x = self.norm(x)
            elif layer == "act" and activate and self.with_activation:
                x = self.activate(x)
        return x
