"""Fold inference-mode batch norms into the convolution that feeds them.

A batch norm in eval mode is a per-channel affine map ``y = x * s + t`` with
``s = weight / sqrt(running_var + eps)`` and ``t = bias - running_mean * s``. When its input is the
output of a convolution, ``bn(conv(x)) = conv'(x)`` with ``W' = W * s[:, None, None, None]`` and
``b' = b * s + t`` (``b = 0`` for a bias-free conv), so the norm can be dropped (replaced by
``nn.Identity``), saving one pass over every feature map.

Which pairs are fused: as mmcv's ``fuse_conv_bn`` (mmcv/cnn/utils/fuse_conv_bn.py), a norm is
paired with the convolution registered immediately before it among the children of the same
parent module: ``ConvModule`` (``conv`` then ``bn``), ResNet blocks (``conv1``/``bn1`` ...), the
``downsample`` Sequentials, MobileNet's ``ConvBN``. Unlike mmcv, any other child registered in
between breaks the pair (a later ``bn`` is never folded into an earlier conv across, say, a
ReLU), and a ``ConvModule`` whose ``order`` puts the norm before the conv is left alone.

Only exact folds are made: the conv must be a plain ``nn.Conv2d`` or a modulated deformable conv
(linear in ``weight`` and ``bias``); ``ConvWS2d`` (re-standardises its weight in forward) and DCNv1
(has no bias to carry the shift) are skipped. The norm must be a ``FrozenBatchNorm2d`` or a
``BatchNorm2d``/``SyncBatchNorm`` in eval mode with running statistics: a norm in training mode
normalises with batch statistics, which no fixed conv reproduces, so it is skipped.
"""
from __future__ import annotations

from typing import List, Tuple

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from detzoo.ops.deform_conv import ModulatedDeformConv2d

from .conv_module import ConvModule
from .norm import FrozenBatchNorm2d

__all__ = ["fuse_conv_bn", "find_conv_bn_pairs", "fold_bn_into_conv"]


def _is_foldable_conv(module: nn.Module) -> bool:
    return type(module) is nn.Conv2d or isinstance(module, ModulatedDeformConv2d)


def _is_foldable_norm(module: nn.Module) -> bool:
    if isinstance(module, FrozenBatchNorm2d):
        return True
    return (isinstance(module, _BatchNorm) and not module.training
            and module.running_mean is not None and module.running_var is not None)


def _norm_channels(norm: nn.Module) -> int:
    return norm.num_features


def find_conv_bn_pairs(model: nn.Module) -> List[Tuple[str, str]]:
    """Qualified names ``(conv_name, norm_name)`` of every pair :func:`fuse_conv_bn` would fold."""
    pairs = []
    for parent_name, parent in model.named_modules():
        if isinstance(parent, ConvModule) and parent.with_norm \
                and parent.order.index("norm") < parent.order.index("conv"):
            continue  # the norm runs on the conv's input, not its output
        prefix = f"{parent_name}." if parent_name else ""
        last_conv = None  # (name, module) of the previous child when it was a foldable conv
        for name, child in parent.named_children():
            if last_conv is not None and _is_foldable_norm(child) \
                    and _norm_channels(child) == last_conv[1].out_channels:
                pairs.append((prefix + last_conv[0], prefix + name))
                last_conv = None
                continue
            last_conv = (name, child) if _is_foldable_conv(child) else None
    return pairs


@torch.no_grad()
def fold_bn_into_conv(conv: nn.Module, norm: nn.Module) -> None:
    """Rewrite ``conv``'s weight and bias in place so that ``conv(x)`` equals ``norm(conv(x))``.

    ``conv.weight: [O, C/groups, kh, kw]``; ``norm`` has ``O`` channels. A conv without bias gets
    one (a new parameter on the weight's device and dtype). Arithmetic is done in float64 and
    cast back, so the fold adds no error beyond the final rounding.
    """
    weight = conv.weight
    scale = torch.rsqrt(norm.running_var.double() + norm.eps)
    if getattr(norm, "weight", None) is not None:
        scale = scale * norm.weight.double()
    shift = -norm.running_mean.double() * scale
    if getattr(norm, "bias", None) is not None:
        shift = shift + norm.bias.double()
    old_bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(shift)
    new_weight = (weight.double() * scale.reshape(-1, 1, 1, 1)).to(weight.dtype)
    new_bias = (old_bias * scale + shift).to(weight.dtype)
    conv.weight = nn.Parameter(new_weight, requires_grad=weight.requires_grad)
    conv.bias = nn.Parameter(new_bias, requires_grad=weight.requires_grad)


def fuse_conv_bn(model: nn.Module) -> nn.Module:
    """Fold every eval-mode batch norm that directly follows a conv into it; returns ``model``.

    The model is modified in place: each folded norm is replaced by ``nn.Identity`` (so
    ``ConvModule.norm``/``ResNet.norm1`` properties keep working) and its conv gains a bias.
    Call it after ``model.eval()`` and after loading weights; the fused model is for inference
    only (its norms are gone). Norms in training mode are left as they are.
    """
    modules = dict(model.named_modules())
    for conv_name, norm_name in find_conv_bn_pairs(model):
        fold_bn_into_conv(modules[conv_name], modules[norm_name])
        parent_name, _, child = norm_name.rpartition(".")
        parent = modules[parent_name] if parent_name else model
        setattr(parent, child, nn.Identity())
    return model
