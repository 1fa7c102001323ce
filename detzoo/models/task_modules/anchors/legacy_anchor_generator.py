"""Detectron-1 style anchors, as PaddlePaddle's fluid ``anchor_generator`` op makes them.

Facts from ``paddle/fluid/operators/detection/anchor_generator_op.h`` (Paddle 1.x / 2.x):

- the centre of cell (x, y) is ``(x * stride_w + offset * (stride_w - 1), ...)``, ``offset``
  0.5 in every PaddleDetection config, i.e. ``(stride - 1) / 2`` into the cell;
- per aspect ratio ``r`` (height / width) and size ``s``: ``base_w = round(sqrt(stride_w *
  stride_h / r))``, ``base_h = round(base_w * r)`` (C ``round``: halves away from zero),
  ``w = s / stride_w * base_w``, ``h = s / stride_h * base_h``; the box spans
  ``centre -+ 0.5 * (w - 1)`` (inclusive pixel corners: a width of ``x2 - x1 + 1``);
- ratio-major, size-minor order within a location (MMDetection's ``scale_major=True``),
  locations row-major, so flat index ``(y * W + x) * A + a`` as in ``AnchorGenerator``.

MMDetection's ``LegacyAnchorGenerator`` (Detectron-1 checkpoints) shares the centre and the
``-1`` extents but does not round the ratio-enumerated sizes; Paddle's rounding is kept here.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from detzoo.errors import ConfigError
from .anchor_generator import AnchorGenerator


class LegacyAnchorGenerator(AnchorGenerator):
    """Anchors with Paddle / Detectron-1 "+1" geometry.

    Args:
        strides: stride of each level (an int, or (stride_w, stride_h)).
        ratios: height / width aspect ratios.
        sizes: per level, the anchor sizes in input pixels (Paddle's ``anchor_sizes``; the FPN
            RPN uses one per level, ``anchor_start_size * 2 ** level``).
        scales / octave_base_scale + scales_per_octave: instead of ``sizes``, sizes relative to
            each level's stride (``size = stride * scale``), as ``AnchorGenerator`` takes them.
        center_offset: Paddle's ``offset`` (centre at ``offset * (stride - 1)`` in a cell).
    """

    def __init__(self, strides: Sequence, ratios: Sequence[float],
                 sizes: Optional[Sequence[Sequence[float]]] = None,
                 scales: Optional[Sequence[float]] = None, octave_base_scale: Optional[float] = None,
                 scales_per_octave: Optional[int] = None, center_offset: float = 0.5):
        self.strides = [tuple(s) if isinstance(s, (list, tuple)) else (s, s) for s in strides]
        self.ratios = torch.tensor(ratios, dtype=torch.float32)
        self.scale_major = True
        self.center_offset = center_offset
        if sizes is not None:
            if scales is not None or octave_base_scale is not None:
                raise ConfigError("LegacyAnchorGenerator: give sizes or scales, not both")
            if len(sizes) != len(self.strides):
                raise ConfigError(f"LegacyAnchorGenerator: {len(sizes)} lists of sizes for "
                                  f"{len(self.strides)} strides")
            self.sizes = [[float(s) for s in level] for level in sizes]
        else:
            if scales is not None:
                rel = [float(s) for s in scales]
            elif octave_base_scale is not None and scales_per_octave is not None:
                rel = [octave_base_scale * 2 ** (i / scales_per_octave) for i in range(scales_per_octave)]
            else:
                raise ConfigError("LegacyAnchorGenerator: give sizes, scales, or octave_base_scale "
                                  "+ scales_per_octave")
            self.sizes = [[min(stride) * s for s in rel] for stride in self.strides]
        self.scales = torch.tensor(self.sizes[0], dtype=torch.float32) / min(self.strides[0])
        self.base_sizes = [min(s) for s in self.strides]
        self.base_anchors = [self._legacy_base_anchors(stride, level_sizes)
                             for stride, level_sizes in zip(self.strides, self.sizes)]

    def _legacy_base_anchors(self, stride, sizes) -> torch.Tensor:
        """[A, 4] anchors of the cell at the origin (ratio-major, size-minor), float32 like the op."""
        f32 = np.float32
        stride_w, stride_h = f32(stride[0]), f32(stride[1])
        ctr_x = f32(self.center_offset) * (stride_w - f32(1))
        ctr_y = f32(self.center_offset) * (stride_h - f32(1))
        rows = []
        for ratio in self.ratios.tolist():
            ratio = f32(ratio)
            base_w = np.floor(np.sqrt(stride_w * stride_h / ratio) + f32(0.5))  # C round, x > 0
            base_h = np.floor(base_w * ratio + f32(0.5))
            for size in sizes:
                width = f32(size) / stride_w * base_w
                height = f32(size) / stride_h * base_h
                rows.append([ctr_x - f32(0.5) * (width - f32(1)), ctr_y - f32(0.5) * (height - f32(1)),
                             ctr_x + f32(0.5) * (width - f32(1)), ctr_y + f32(0.5) * (height - f32(1))])
        return torch.tensor(np.array(rows, dtype=np.float32))

    def __repr__(self) -> str:
        return (f"LegacyAnchorGenerator(strides={self.strides}, ratios={self.ratios.tolist()}, "
                f"sizes={self.sizes}, center_offset={self.center_offset})")
