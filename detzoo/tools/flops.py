"""Parameters and FLOPs per module, counted by PyTorch's own ``torch.utils.flop_counter``.

``FlopCounterMode`` counts the matrix arithmetic of the ATen ops it knows (convolutions,
matmul/addmm/bmm, scaled-dot-product attention) as 2 FLOPs per multiply-add; element-wise ops,
pooling, normalisation, NMS and RoIAlign's interpolation are not counted. MMDetection's
``get_flops.py`` (mmcv's counter) reports multiply-adds under the name "GFLOPs", so its figure
corresponds to our ``MACs`` column (FLOPs / 2) -- and it also skips non-matrix ops.

The counted forward is the detector's inference, ``model.predict(img, img_metas)`` on one
``[1, 3, H, W]`` zero-mean random input (H, W padded up to the config's size divisor, 32), so the
RoI head runs on the proposals the RPN actually keeps (up to its ``max_per_img``).
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from detzoo.errors import ConfigError

__all__ = ["count_flops", "parse_shape", "format_table", "ModuleCount"]

ModuleCount = Tuple[str, int, int]  # (qualified module name, parameters, FLOPs)


def parse_shape(values: Sequence[int]) -> Tuple[int, int]:
    """``--shape W H`` or ``--shape S`` (square) -> ``(width, height)``."""
    values = list(values)
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or any(int(v) <= 0 for v in values):
        raise ConfigError(f"--shape {' '.join(map(str, values))}: give WIDTH HEIGHT (e.g. 1333 800) "
                          "or one size for a square input, positive integers")
    return int(values[0]), int(values[1])


def _dummy_meta(height: int, width: int, pad_h: int, pad_w: int) -> dict:
    return dict(filename="", img_id=0, ori_shape=(height, width, 3), img_shape=(height, width, 3),
                pad_shape=(pad_h, pad_w, 3), batch_input_shape=(pad_h, pad_w),
                scale_factor=np.ones(4, dtype=np.float32), flip=False, flip_direction=None)


def count_flops(model: nn.Module, width: int, height: int, size_divisor: int = 32,
                seed: int = 0) -> Tuple[List[ModuleCount], int, Tuple[int, int]]:
    """Count one inference of ``model`` on a ``height x width`` image.

    Returns ``(rows, total_flops, (pad_h, pad_w))``: one row per module (qualified name from
    ``model.named_modules()``, ``""`` for the whole model), with its parameter count (shared
    parameters counted once per module that owns them) and the FLOPs of all its calls.
    """
    pad_h = int(math.ceil(height / size_divisor) * size_divisor) if size_divisor else height
    pad_w = int(math.ceil(width / size_divisor) * size_divisor) if size_divisor else width
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    img = torch.zeros(1, 3, pad_h, pad_w)
    img[:, :, :height, :width] = torch.randn(1, 3, height, width, generator=gen)
    img = img.to(device)
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False, depth=None)
    try:
        with torch.no_grad(), counter:
            _Predict(model)(img, [_dummy_meta(height, width, pad_h, pad_w)])
    finally:
        model.train(was_training)
    # FlopCounterMode names each *called* module "<RootClass>.<qualified name>"; the root here
    # is the _Predict wrapper, whose child "detector" is the model.
    recorded: Dict[str, int] = {}
    for name, per_op in counter.get_flop_counts().items():
        if name.startswith("_Predict.detector."):
            recorded[name[len("_Predict.detector."):]] = int(sum(per_op.values()))
    total = int(counter.get_total_flops())
    recorded[""] = total
    flops = _fill_uncalled(model, recorded)
    rows = [(name, sum(p.numel() for p in module.parameters()), flops[name])
            for name, module in model.named_modules()]
    return rows, total, (pad_h, pad_w)


class _Predict(nn.Module):
    """Calls ``detector.predict`` from ``forward`` so the counter sees the module tree."""

    def __init__(self, detector: nn.Module):
        super().__init__()
        self.detector = detector

    def forward(self, img, img_metas):
        return self.detector.predict(img, img_metas, rescale=False)


def _fill_uncalled(model: nn.Module, recorded: Dict[str, int]) -> Dict[str, int]:
    """FLOPs of every module: its own record when it was called through ``__call__``, else the
    sum over its children (a head driven through ``simple_test``-like methods is never called
    itself; arithmetic it does outside any submodule then counts only in the model total)."""
    result: Dict[str, int] = {}

    def visit(name: str, module: nn.Module) -> int:
        child_sum = sum(visit(f"{name}.{child}" if name else child, sub)
                        for child, sub in module.named_children())
        result[name] = recorded.get(name, child_sum)
        return result[name]

    visit("", model)
    return result


def _human(value: float, unit: str = "") -> str:
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.2f} {suffix}{unit}"
    return f"{value:.0f} {unit}".rstrip()


def format_table(rows: List[ModuleCount], total_flops: int, max_depth: int = 2) -> str:
    """Text table of the modules up to ``max_depth`` dots deep (0 = only the whole model),
    with parameters, GFLOPs, GMACs and the share of the total FLOPs."""
    lines = [f"{'module':<48} {'params':>10} {'FLOPs':>12} {'MACs':>12} {'%FLOPs':>7}"]
    for name, params, flops in rows:
        depth = 0 if name == "" else name.count(".") + 1
        if depth > max_depth:
            continue
        label = ("  " * depth + (name.rsplit(".", 1)[-1] if name else "(model)"))
        share = 100.0 * flops / total_flops if total_flops else 0.0
        lines.append(f"{label:<48} {_human(params):>10} {_human(flops):>12} {_human(flops / 2):>12} "
                     f"{share:>6.1f}%")
    return "\n".join(lines)


def summary(rows: List[ModuleCount], total_flops: int) -> "OrderedDict[str, float]":
    params = rows[0][1] if rows else 0
    return OrderedDict(params=params, flops=total_flops, macs=total_flops / 2,
                       gflops=total_flops / 1e9, gmacs=total_flops / 2e9, mparams=params / 1e6)
