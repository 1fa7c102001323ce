"""Anchor generation with MMDetection 2.x conventions (``AnchorGenerator``).

Base anchors are floats centred at ``center_offset * stride`` of a cell (0 by default: the
top-left corner of each cell, as MMDetection does; see shared/spec/fidelity.md B.6). Within a
location the order is ratio-major, scale-minor when ``scale_major=True``; locations are
row-major, so the flat index of an anchor is ``(y * W + x) * A + a``.
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import torch


class AnchorGenerator:
    """Dense anchors for a pyramid of feature maps.

    Args:
        strides: stride of each level in input pixels (an int, or (stride_w, stride_h)).
        ratios: height/width ratios; ``h = base * sqrt(r) * scale``, ``w = base / sqrt(r) * scale``.
        scales: anchor scales relative to the base size; or give ``octave_base_scale`` and
            ``scales_per_octave`` (RetinaNet: scales = base * 2**(i / n)).
        base_sizes: base size per level (default: the level's stride).
        center_offset: anchor centre within a cell, in units of the stride (0 or 0.5).
    """

    def __init__(self, strides: Sequence, ratios: Sequence[float], scales: Optional[Sequence[float]] = None,
                 base_sizes: Optional[Sequence[int]] = None, scale_major: bool = True,
                 octave_base_scale: Optional[float] = None, scales_per_octave: Optional[int] = None,
                 center_offset: float = 0.0):
        self.strides = [tuple(s) if isinstance(s, (list, tuple)) else (s, s) for s in strides]
        self.base_sizes = list(base_sizes) if base_sizes is not None else [min(s) for s in self.strides]
        if len(self.base_sizes) != len(self.strides):
            raise ValueError("base_sizes and strides must have the same length")
        if scales is not None:
            if octave_base_scale is not None:
                raise ValueError("give either scales or octave_base_scale/scales_per_octave, not both")
            self.scales = torch.tensor(scales, dtype=torch.float32)
        elif octave_base_scale is not None and scales_per_octave is not None:
            octave = [2 ** (i / scales_per_octave) for i in range(scales_per_octave)]
            self.scales = torch.tensor(octave, dtype=torch.float32) * octave_base_scale
        else:
            raise ValueError("anchor scales are needed: give scales or octave_base_scale + scales_per_octave")
        self.ratios = torch.tensor(ratios, dtype=torch.float32)
        self.scale_major = scale_major
        self.center_offset = center_offset
        self.base_anchors = [self._base_anchors(b) for b in self.base_sizes]

    @property
    def num_levels(self) -> int:
        return len(self.strides)

    @property
    def num_base_anchors(self) -> List[int]:
        return [a.shape[0] for a in self.base_anchors]

    def _base_anchors(self, base_size: float) -> torch.Tensor:
        x_c = y_c = self.center_offset * base_size
        h_ratios = torch.sqrt(self.ratios)
        w_ratios = 1 / h_ratios
        if self.scale_major:
            ws = (base_size * w_ratios[:, None] * self.scales[None, :]).reshape(-1)
            hs = (base_size * h_ratios[:, None] * self.scales[None, :]).reshape(-1)
        else:
            ws = (base_size * self.scales[:, None] * w_ratios[None, :]).reshape(-1)
            hs = (base_size * self.scales[:, None] * h_ratios[None, :]).reshape(-1)
        return torch.stack([x_c - 0.5 * ws, y_c - 0.5 * hs, x_c + 0.5 * ws, y_c + 0.5 * hs], dim=-1)

    def single_level_grid_anchors(self, level: int, featmap_size: Tuple[int, int], device=None,
                                  dtype=torch.float32) -> torch.Tensor:
        """Anchors of one level: [H * W * A, 4]."""
        feat_h, feat_w = featmap_size
        stride_w, stride_h = self.strides[level]
        base = self.base_anchors[level].to(device=device, dtype=dtype)
        shift_x = torch.arange(0, feat_w, device=device, dtype=dtype) * stride_w
        shift_y = torch.arange(0, feat_h, device=device, dtype=dtype) * stride_h
        yy, xx = torch.meshgrid(shift_y, shift_x, indexing="ij")
        shifts = torch.stack([xx.reshape(-1), yy.reshape(-1), xx.reshape(-1), yy.reshape(-1)], dim=-1)
        return (shifts[:, None, :] + base[None, :, :]).reshape(-1, 4)

    def grid_anchors(self, featmap_sizes: Sequence[Tuple[int, int]], device=None) -> List[torch.Tensor]:
        """Anchors of every level: a list of [H_l * W_l * A_l, 4]."""
        return [self.single_level_grid_anchors(i, tuple(s), device) for i, s in enumerate(featmap_sizes)]

    def valid_flags(self, featmap_sizes: Sequence[Tuple[int, int]], pad_shape: Tuple[int, ...],
                    device=None) -> List[torch.Tensor]:
        """Per level, a bool [H_l * W_l * A_l]: False for anchors whose cell lies in the batch
        padding beyond this image's own padded size (they must not be trained on)."""
        flags = []
        for i, (feat_h, feat_w) in enumerate(featmap_sizes):
            stride_w, stride_h = self.strides[i]
            valid_h = min(int(math.ceil(pad_shape[0] / stride_h)), feat_h)
            valid_w = min(int(math.ceil(pad_shape[1] / stride_w)), feat_w)
            valid_y = torch.arange(feat_h, device=device) < valid_h
            valid_x = torch.arange(feat_w, device=device) < valid_w
            valid = (valid_y[:, None] & valid_x[None, :]).reshape(-1)
            flags.append(valid[:, None].expand(-1, self.num_base_anchors[i]).reshape(-1))
        return flags

    def __repr__(self) -> str:
        return (f"AnchorGenerator(strides={self.strides}, ratios={self.ratios.tolist()}, "
                f"scales={self.scales.tolist()}, center_offset={self.center_offset})")
