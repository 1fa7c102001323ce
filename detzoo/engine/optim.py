"""Optimizer construction from MMDetection 2.x ``optimizer`` / ``optimizer_config`` dicts.

``paramwise_cfg`` follows mmcv's ``DefaultOptimizerConstructor`` (runner/optimizer/
default_constructor.py): ``custom_keys`` (longest matching key wins, then alphabetical) set
``lr_mult`` / ``decay_mult`` for every parameter whose full name contains the key and bypass
the other rules; otherwise ``bias_lr_mult``, ``bias_decay_mult`` (biases outside norm layers),
``norm_decay_mult`` (norm layers' weight and bias) and ``dwconv_decay_mult`` (depth-wise convs)
apply. Parameters with equal settings share a param group.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import torch
from torch import nn

from detzoo.errors import ConfigError

_NORM_TYPES = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm,
               nn.modules.instancenorm._InstanceNorm, nn.LocalResponseNorm)
_PARAMWISE_KEYS = {"custom_keys", "bias_lr_mult", "bias_decay_mult", "norm_decay_mult",
                   "dwconv_decay_mult", "bypass_duplicate"}


def auto_scale_lr(base_lr: float, *, actual_batch_size: int, base_batch_size: int = 16) -> float:
    """Linear scaling rule (Goyal et al. 2017): ``base_lr`` is for a total batch of
    ``base_batch_size`` (MMDetection: 8 GPUs x 2 images = 16); returns the lr for
    ``actual_batch_size`` images per iteration over all GPUs."""
    if base_batch_size <= 0 or actual_batch_size <= 0:
        raise ConfigError(
            f"auto_scale_lr needs positive batch sizes, got base {base_batch_size}, actual {actual_batch_size}"
        )
    return base_lr * actual_batch_size / base_batch_size


def _optimizer_class(opt_type: Any) -> type:
    if isinstance(opt_type, type) and issubclass(opt_type, torch.optim.Optimizer):
        return opt_type
    if isinstance(opt_type, str):
        cls = getattr(torch.optim, opt_type, None)
        if isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer):
            return cls
    raise ConfigError(
        f"optimizer.type={opt_type!r} is not a torch.optim optimizer class or name (e.g. 'SGD', 'AdamW')"
    )


def _param_settings(module: nn.Module, name: str, param_name: str,
                    paramwise: Mapping[str, Any], sorted_custom_keys: list[str]) -> tuple[float, float]:
    """(lr multiplier, weight-decay multiplier) of one parameter."""
    custom_keys = paramwise.get("custom_keys") or {}
    for key in sorted_custom_keys:
        if key in param_name:
            spec = custom_keys[key]
            return float(spec.get("lr_mult", 1.0)), float(spec.get("decay_mult", 1.0))
    is_norm = isinstance(module, _NORM_TYPES)
    is_dwconv = isinstance(module, nn.Conv2d) and module.in_channels == module.groups > 1
    lr_mult, decay_mult = 1.0, 1.0
    if name == "bias" and not is_norm:
        lr_mult = float(paramwise.get("bias_lr_mult", 1.0))
    if is_norm:
        decay_mult = float(paramwise.get("norm_decay_mult", 1.0))
    elif is_dwconv:
        decay_mult = float(paramwise.get("dwconv_decay_mult", 1.0))
    elif name == "bias":
        decay_mult = float(paramwise.get("bias_decay_mult", 1.0))
    return lr_mult, decay_mult


def _paramwise_groups(model: nn.Module, base_lr: float, base_wd: float | None,
                      paramwise: Mapping[str, Any]) -> list[dict[str, Any]]:
    unknown = set(paramwise) - _PARAMWISE_KEYS
    if unknown:
        raise ConfigError(
            f"optimizer.paramwise_cfg has unknown keys {sorted(unknown)}; known: {sorted(_PARAMWISE_KEYS)}"
        )
    custom_keys = paramwise.get("custom_keys") or {}
    sorted_custom_keys = sorted(sorted(custom_keys), key=len, reverse=True)
    groups: dict[tuple[float, float], dict[str, Any]] = {}
    seen: set[int] = set()
    for prefix, module in model.named_modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue  # shared parameters go into the group of their first owner
            seen.add(id(param))
            full_name = f"{prefix}.{name}" if prefix else name
            lr_mult, decay_mult = _param_settings(module, name, full_name, paramwise,
                                                  sorted_custom_keys)
            group = groups.setdefault((lr_mult, decay_mult), {"params": [], "lr": base_lr * lr_mult})
            if base_wd is not None:
                group["weight_decay"] = base_wd * decay_mult
            group["params"].append(param)
    return list(groups.values())


def build_optimizer(model: nn.Module, optimizer_cfg: Mapping[str, Any]) -> torch.optim.Optimizer:
    """Optimizer over ``model``'s trainable parameters (``requires_grad``) from a config dict.

    ``optimizer_cfg``: ``dict(type=torch.optim.SGD or "SGD", lr=0.02, momentum=0.9,
    weight_decay=1e-4, paramwise_cfg=None)``; other keys go to the optimizer's constructor.
    A DDP/DataParallel wrapper is looked through (its ``module`` names the parameters).
    """
    kwargs = dict(optimizer_cfg)
    if "constructor" in kwargs:
        raise ConfigError(f"optimizer.constructor={kwargs['constructor']!r} is not supported")
    cls = _optimizer_class(kwargs.pop("type", None))
    paramwise = kwargs.pop("paramwise_cfg", None)
    if "lr" not in kwargs:
        raise ConfigError("optimizer config has no 'lr'")
    model = getattr(model, "module", model)
    params: Iterable[Any]
    if paramwise:
        params = _paramwise_groups(model, float(kwargs["lr"]), kwargs.get("weight_decay"), paramwise)
    else:
        params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ConfigError("the model has no trainable parameters (all have requires_grad=False)")
    try:
        return cls(params, **kwargs)
    except TypeError as exc:
        raise ConfigError(f"optimizer {cls.__name__}: {exc}") from None


def clip_gradients(parameters: Iterable[torch.nn.Parameter], grad_clip: Mapping[str, Any] | None
                   ) -> torch.Tensor | None:
    """``optimizer_config.grad_clip`` (``dict(max_norm=35, norm_type=2)``): clip the total norm of
    the gradients that exist; returns the norm before clipping, or None when clipping is off."""
    if not grad_clip:
        return None
    with_grad = [p for p in parameters if p.requires_grad and p.grad is not None]
    if not with_grad:
        return None
    return torch.nn.utils.clip_grad_norm_(with_grad, **dict(grad_clip))
