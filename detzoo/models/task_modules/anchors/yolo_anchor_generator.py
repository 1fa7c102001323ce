"""YOLO anchors: explicit (w, h) sizes per level, centred in the middle of each grid cell.

MMDetection ``YOLOAnchorGenerator`` (mmdet/models/task_modules/prior_generators/
anchor_generator.py): the base anchors of a level are centred at (stride_w / 2, stride_h / 2)
and shifted by (x * stride_w, y * stride_h), so the anchor of cell (x, y) is centred at
((x + 0.5) * stride_w, (y + 0.5) * stride_h) -- unlike ``AnchorGenerator``'s top-left corner.
Flat order is the same as every anchor head's: ``(y * W + x) * A + a``.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import torch

from detzoo.errors import ConfigError
from .anchor_generator import AnchorGenerator


def _pair(value) -> Tuple[float, float]:
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ConfigError(f"YOLOAnchorGenerator: expected a number or a pair, got {value!r}")
        return float(value[0]), float(value[1])
    return float(value), float(value)


class YOLOAnchorGenerator(AnchorGenerator):
    """Args:
        strides: stride of each level (an int, or (stride_w, stride_h)), coarsest first for
            YOLOv3 ([32, 16, 8]).
        base_sizes: per level, a list of anchor (w, h) sizes in input pixels; every level must
            have the same number of anchors.

    Reuses :class:`AnchorGenerator`'s grid shifting (``grid_anchors``,
    ``single_level_grid_anchors``) and ``valid_flags``; adds :meth:`responsible_flags`.
    """

    def __init__(self, strides: Sequence, base_sizes: Sequence[Sequence]):
        # AnchorGenerator.__init__ derives sizes from scales and ratios: not used here.
        if len(strides) != len(base_sizes):
            raise ConfigError(f"YOLOAnchorGenerator: {len(strides)} strides but "
                              f"{len(base_sizes)} levels of base_sizes")
        if not base_sizes or any(len(level) != len(base_sizes[0]) or not level for level in base_sizes):
            raise ConfigError("YOLOAnchorGenerator: every level of base_sizes needs the same, "
                              f"non-zero number of (w, h) sizes, got {base_sizes!r}")
        self.strides = [_pair(s) for s in strides]
        self.base_sizes = [[_pair(size) for size in level] for level in base_sizes]
        self.centers = [(sw / 2.0, sh / 2.0) for sw, sh in self.strides]
        self.center_offset = 0.0
        self.base_anchors = [self._yolo_base_anchors(level, center)
                             for level, center in zip(self.base_sizes, self.centers)]

    @staticmethod
    def _yolo_base_anchors(sizes: List[Tuple[float, float]], center: Tuple[float, float]) -> torch.Tensor:
        wh = torch.tensor(sizes, dtype=torch.float32)
        ctr = torch.tensor(center, dtype=torch.float32)
        return torch.cat([ctr - 0.5 * wh, ctr + 0.5 * wh], dim=1)

    @property
    def num_base_priors(self) -> List[int]:
        return self.num_base_anchors

    def grid_priors(self, featmap_sizes: Sequence[Tuple[int, int]], device=None) -> List[torch.Tensor]:
        """MMDetection 3.x name of :meth:`grid_anchors`."""
        return self.grid_anchors(featmap_sizes, device=device)

    def responsible_flags(self, featmap_sizes: Sequence[Tuple[int, int]], gt_bboxes: torch.Tensor,
                          device=None) -> List[torch.Tensor]:
        """Per level, a bool [H * W * A]: True for every anchor of a cell that holds the centre
        of at least one ground-truth box (any of them -- not tied to a particular box).

        The cell of a centre (cx, cy) is (floor(cx / stride_w), floor(cy / stride_h)). A centre
        on or beyond the far border (possible only for degenerate boxes) is clamped into the
        last cell, where MMDetection would index out of range or wrap to the next row.
        """
        gt_bboxes = gt_bboxes.to(device)
        ctr_x = (gt_bboxes[:, 0] + gt_bboxes[:, 2]) * 0.5
        ctr_y = (gt_bboxes[:, 1] + gt_bboxes[:, 3]) * 0.5
        flags = []
        for level, (feat_h, feat_w) in enumerate(featmap_sizes):
            stride_w, stride_h = self.strides[level]
            grid_x = torch.floor(ctr_x / stride_w).long().clamp(0, feat_w - 1)
            grid_y = torch.floor(ctr_y / stride_h).long().clamp(0, feat_h - 1)
            cells = torch.zeros(feat_h * feat_w, dtype=torch.bool, device=device)
            cells[grid_y * feat_w + grid_x] = True
            flags.append(cells[:, None].expand(-1, self.num_base_anchors[level]).reshape(-1))
        return flags

    def __repr__(self) -> str:
        return f"YOLOAnchorGenerator(strides={self.strides}, base_sizes={self.base_sizes})"
