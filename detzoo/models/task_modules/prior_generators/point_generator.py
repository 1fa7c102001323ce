"""Grid points of a feature pyramid (MMDetection 3.x ``MlvlPointGenerator``).

The point of cell (x, y) of a level with stride s sits at ``((x + offset) * s, (y + offset) * s)``;
anchor-free heads use offset 0.5 (the cell centre: FCOS's ``x * s + s // 2`` for even strides).
Points are row-major, so the flat index of cell (x, y) is ``y * W + x``.
"""
from __future__ import annotations

import math
from typing import List, Sequence, Tuple

import torch


class MlvlPointGenerator:
    """Args:
        strides: per level, an int or (stride_w, stride_h), in input pixels.
        offset: point position within a cell, in units of the stride.
    """

    def __init__(self, strides: Sequence, offset: float = 0.5):
        self.strides = [tuple(s) if isinstance(s, (list, tuple)) else (s, s) for s in strides]
        self.offset = offset

    @property
    def num_levels(self) -> int:
        return len(self.strides)

    @property
    def num_base_priors(self) -> List[int]:
        return [1] * len(self.strides)

    def single_level_grid_priors(self, featmap_size: Tuple[int, int], level: int, dtype=torch.float32,
                                 device=None, with_stride: bool = False) -> torch.Tensor:
        """[H * W, 2] points (x, y), or [H * W, 4] (x, y, stride_w, stride_h) with_stride."""
        feat_h, feat_w = featmap_size
        stride_w, stride_h = self.strides[level]
        shift_x = ((torch.arange(feat_w, device=device) + self.offset) * stride_w).to(dtype)
        shift_y = ((torch.arange(feat_h, device=device) + self.offset) * stride_h).to(dtype)
        yy, xx = torch.meshgrid(shift_y, shift_x, indexing="ij")
        columns = [xx.reshape(-1), yy.reshape(-1)]
        if with_stride:
            columns += [xx.new_full((xx.numel(),), stride_w), xx.new_full((xx.numel(),), stride_h)]
        return torch.stack(columns, dim=-1)

    def grid_priors(self, featmap_sizes: Sequence[Tuple[int, int]], dtype=torch.float32, device=None,
                    with_stride: bool = False) -> List[torch.Tensor]:
        """Points of every level: a list of [H_l * W_l, 2 (or 4)]."""
        return [self.single_level_grid_priors(tuple(s), i, dtype, device, with_stride)
                for i, s in enumerate(featmap_sizes)]

    def valid_flags(self, featmap_sizes: Sequence[Tuple[int, int]], pad_shape: Tuple[int, ...],
                    device=None) -> List[torch.Tensor]:
        """Per level, bool [H_l * W_l]: False for cells beyond this image's own padded size."""
        flags = []
        for (stride_w, stride_h), (feat_h, feat_w) in zip(self.strides, featmap_sizes):
            valid_h = min(int(math.ceil(pad_shape[0] / stride_h)), feat_h)
            valid_w = min(int(math.ceil(pad_shape[1] / stride_w)), feat_w)
            valid_y = torch.arange(feat_h, device=device) < valid_h
            valid_x = torch.arange(feat_w, device=device) < valid_w
            flags.append((valid_y[:, None] & valid_x[None, :]).reshape(-1))
        return flags

    def __repr__(self) -> str:
        return f"MlvlPointGenerator(strides={self.strides}, offset={self.offset})"
