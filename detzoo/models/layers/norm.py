"""Normalisation layers built from MMDetection-style ``norm_cfg`` dicts.

``norm_cfg`` is ``dict(type=..., requires_grad=True, **layer_kwargs)`` with type one of
``"BN"`` (``nn.BatchNorm2d``), ``"SyncBN"`` (``nn.SyncBatchNorm``), ``"GN"`` (``nn.GroupNorm``,
needs ``num_groups``) or ``"FrozenBN"`` (:class:`FrozenBatchNorm2d`). ``eps`` defaults to 1e-5
for every type, as in mmcv's ``build_norm_layer``.

Checkpoint keys depend on the attribute name of the norm layer: mmcv names it by an abbreviation
of its class (``bn`` for every batch norm, ``gn`` for group norm) plus a postfix, giving keys such
as ``bn1.weight`` or ``gn.weight`` (mmcv ``cnn/bricks/norm.py`` ``infer_abbr``). :func:`norm_name`
reproduces that naming.
"""
from __future__ import annotations

import torch
from torch import nn

from detzoo.errors import ConfigError

__all__ = ["FrozenBatchNorm2d", "build_norm_layer", "norm_name", "NORM_TYPES"]


class FrozenBatchNorm2d(nn.Module):
    """Batch norm with fixed statistics and affine terms (buffers, never trained).

    Computes ``y = (x - running_mean) / sqrt(running_var + eps) * weight + bias`` per channel of
    ``x: [N, C, H, W]``. Its state dict holds ``weight, bias, running_mean, running_var``; a
    ``num_batches_tracked`` entry in a loaded state dict (from a ``BatchNorm2d`` checkpoint) is
    accepted and dropped.
    """

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        state_dict.pop(prefix + "num_batches_tracked", None)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight * torch.rsqrt(self.running_var + self.eps)
        shift = self.bias - self.running_mean * scale
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return x * scale.reshape(shape) + shift.reshape(shape)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"


# type -> (class, abbreviation used in attribute names)
NORM_TYPES = {
    "BN": (nn.BatchNorm2d, "bn"),
    "BN2d": (nn.BatchNorm2d, "bn"),
    "SyncBN": (nn.SyncBatchNorm, "bn"),
    "GN": (nn.GroupNorm, "gn"),
    "FrozenBN": (FrozenBatchNorm2d, "bn"),
}


def _norm_type(norm_cfg: dict) -> str:
    if not isinstance(norm_cfg, dict) or "type" not in norm_cfg:
        raise ConfigError(f"norm_cfg must be a dict with a 'type' key, got {norm_cfg!r}")
    norm_type = norm_cfg["type"]
    if norm_type not in NORM_TYPES:
        raise ConfigError(
            f"norm_cfg type {norm_type!r} is not one of {', '.join(NORM_TYPES)}")
    return norm_type


def norm_name(norm_cfg: dict, postfix: int | str = "") -> str:
    """Attribute name of a norm layer, e.g. ``norm_name(dict(type="GN", ...), 1) == "gn1"``."""
    return NORM_TYPES[_norm_type(norm_cfg)][1] + str(postfix)


def build_norm_layer(norm_cfg: dict, num_features: int) -> nn.Module:
    """Build the norm layer described by ``norm_cfg`` for ``num_features`` channels.

    ``requires_grad`` (default True) is applied to the layer's parameters; other keys (``eps``,
    ``momentum``, ``num_groups``, ``affine``) go to the layer's constructor.
    """
    norm_type = _norm_type(norm_cfg)
    kwargs = {k: v for k, v in norm_cfg.items() if k not in ("type", "requires_grad")}
    kwargs.setdefault("eps", 1e-5)
    layer_cls = NORM_TYPES[norm_type][0]
    try:
        if norm_type == "GN":
            if "num_groups" not in kwargs:
                raise ConfigError(f"norm_cfg {norm_cfg!r}: GN needs 'num_groups'")
            layer = layer_cls(num_channels=num_features, **kwargs)
        else:
            layer = layer_cls(num_features, **kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"norm_cfg {norm_cfg!r} for {num_features} channels: {err}") from None
    requires_grad = norm_cfg.get("requires_grad", True)
    for param in layer.parameters():
        param.requires_grad = requires_grad
    return layer
