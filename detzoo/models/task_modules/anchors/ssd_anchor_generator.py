"""SSD default boxes with MMDetection's ``SSDAnchorGenerator`` numerics.

Per level k the generator has a ``min_size`` and a ``max_size`` and a list of aspect ratios
``r`` (h/w). Each location holds, in this order (MMDetection, ``scale_major=False``):

    [min x min, sqrt(min*max) square, then for each r: (w, h) = (min*sqrt(r), min/sqrt(r)) and
     (min/sqrt(r), min*sqrt(r))]

i.e. 4 boxes for ratios [2] and 6 for [2, 3]. Boxes are centred on ``(x + 0.5, y + 0.5) *
stride`` in input pixels and are not clipped. With ``min_sizes``/``max_sizes`` omitted, the
sizes come from ``basesize_ratio_range`` and ``input_size`` (300 or 512) by MMDetection's
integer arithmetic (``mmdet/models/task_modules/prior_generators/anchor_generator.py``,
``SSDAnchorGenerator.__init__``):

    step = floor((max% - min%) / (levels - 2)); level k >= 1 uses ratio min% + (k - 1) * step,
    min_size = int(input * ratio / 100), max_size = int(input * (ratio + step) / 100);
    level 0 is added by hand (7%..15% of 300 for COCO, 10%..20% for VOC; 4%..10% / 7%..15%
    of 512).

For SSD300 COCO this gives min sizes [21, 45, 99, 153, 207, 261] and max sizes
[45, 99, 153, 207, 261, 315]. Extension (not in MMDetection): a ``max_sizes`` entry of None
drops the sqrt(min*max) box of that level, as PaddleDetection's first SSD-MobileNet level does.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch

from detzoo.errors import ConfigError
from .anchor_generator import AnchorGenerator

# (input_size, basesize_ratio_range[0]) -> (min %, max %) of the hand-added first level
_FIRST_LEVEL = {(300, 0.15): (7, 15), (300, 0.2): (10, 20), (512, 0.1): (4, 10), (512, 0.15): (7, 15)}


def ssd_sizes(input_size: int, basesize_ratio_range: Sequence[float], num_levels: int):
    """(min_sizes, max_sizes) per level, MMDetection's integer arithmetic (module docstring)."""
    if len(basesize_ratio_range) != 2 or not all(isinstance(r, float) for r in basesize_ratio_range):
        raise ConfigError(f"SSDAnchorGenerator basesize_ratio_range={basesize_ratio_range!r} must be "
                          "two floats, e.g. (0.15, 0.9)")
    first = _FIRST_LEVEL.get((input_size, basesize_ratio_range[0]))
    if first is None:
        raise ConfigError(f"SSDAnchorGenerator: input_size={input_size} with basesize_ratio_range "
                          f"starting at {basesize_ratio_range[0]} has no preset first level; known: "
                          f"{sorted(_FIRST_LEVEL)} (or give min_sizes and max_sizes)")
    if num_levels < 3:
        raise ConfigError(f"SSDAnchorGenerator needs at least 3 levels to derive sizes, got {num_levels}")
    min_ratio, max_ratio = int(basesize_ratio_range[0] * 100), int(basesize_ratio_range[1] * 100)
    step = int(math.floor(max_ratio - min_ratio) / (num_levels - 2))
    min_sizes, max_sizes = [], []
    for ratio in range(min_ratio, max_ratio + 1, step):
        min_sizes.append(int(input_size * ratio / 100))
        max_sizes.append(int(input_size * (ratio + step) / 100))
    min_sizes.insert(0, int(input_size * first[0] / 100))
    max_sizes.insert(0, int(input_size * first[1] / 100))
    if len(min_sizes) != num_levels:
        raise ConfigError(f"SSDAnchorGenerator: basesize_ratio_range={tuple(basesize_ratio_range)} "
                          f"gives {len(min_sizes)} levels but {num_levels} strides were given")
    return min_sizes, max_sizes


class SSDAnchorGenerator(AnchorGenerator):
    """Default boxes of SSD; ``grid_anchors`` and ``valid_flags`` come from ``AnchorGenerator``.

    Args:
        strides: per-level stride in input pixels (an int/float, or (stride_w, stride_h)).
        ratios: per-level list of aspect ratios r (each adds r and 1/r).
        min_sizes, max_sizes: explicit per-level sizes (give both or neither).
        basesize_ratio_range, input_size: derive the sizes (see the module docstring).
        scale_major: MMDetection's flag (SSD configs use False); kept for its box order.
    """

    def __init__(self, strides: Sequence, ratios: Sequence[Sequence[float]],
                 min_sizes: Optional[Sequence[float]] = None, max_sizes: Optional[Sequence] = None,
                 basesize_ratio_range: Sequence[float] = (0.15, 0.9), input_size: int = 300,
                 scale_major: bool = True):
        if len(strides) != len(ratios):
            raise ConfigError(f"SSDAnchorGenerator: {len(strides)} strides but {len(ratios)} ratio lists")
        if (min_sizes is None) != (max_sizes is None):
            raise ConfigError("SSDAnchorGenerator: give both min_sizes and max_sizes, or neither")
        self.strides = [tuple(s) if isinstance(s, (list, tuple)) else (s, s) for s in strides]
        self.centers = [(sw / 2.0, sh / 2.0) for sw, sh in self.strides]
        self.input_size = input_size
        self.basesize_ratio_range = tuple(basesize_ratio_range)
        if min_sizes is None:
            min_sizes, max_sizes = ssd_sizes(input_size, self.basesize_ratio_range, len(strides))
        if not len(min_sizes) == len(max_sizes) == len(strides):
            raise ConfigError(f"SSDAnchorGenerator: min_sizes ({len(min_sizes)}), max_sizes "
                              f"({len(max_sizes)}) and strides ({len(strides)}) differ in length")
        self.min_sizes, self.max_sizes = list(min_sizes), list(max_sizes)
        self.base_sizes = self.min_sizes
        self.scale_major = scale_major
        self.center_offset = 0.0
        self.level_ratios = [[float(r) for r in level] for level in ratios]
        self.base_anchors = [self._level_base_anchors(k) for k in range(len(self.strides))]

    def _level_base_anchors(self, k: int) -> torch.Tensor:
        min_size, max_size = self.min_sizes[k], self.max_sizes[k]
        # float32 tensors as MMDetection builds them (torch.Tensor of python floats), so the
        # products below round exactly as the reference does
        scale_list = [1.0] if max_size is None else [1.0, math.sqrt(max_size / min_size)]
        ratio_list = [1.0]
        for r in self.level_ratios[k]:
            ratio_list += [1 / r, r]
        scales, ratios = torch.tensor(scale_list), torch.tensor(ratio_list)
        h_ratios = torch.sqrt(ratios)
        w_ratios = 1 / h_ratios
        if self.scale_major:
            ws = (min_size * w_ratios[:, None] * scales[None, :]).reshape(-1)
            hs = (min_size * h_ratios[:, None] * scales[None, :]).reshape(-1)
        else:
            ws = (min_size * scales[:, None] * w_ratios[None, :]).reshape(-1)
            hs = (min_size * scales[:, None] * h_ratios[None, :]).reshape(-1)
        x_c, y_c = self.centers[k]
        anchors = torch.stack([x_c - 0.5 * ws, y_c - 0.5 * hs, x_c + 0.5 * ws, y_c + 0.5 * hs], dim=-1)
        if max_size is None:
            return anchors
        # keep the len(ratios) + 1 boxes [first, the one after all ratios, the others]
        order = list(range(len(ratio_list)))
        order.insert(1, len(order))
        return anchors[order]

    def __repr__(self) -> str:
        return (f"SSDAnchorGenerator(strides={self.strides}, min_sizes={self.min_sizes}, "
                f"max_sizes={self.max_sizes}, ratios={self.level_ratios}, "
                f"scale_major={self.scale_major})")
