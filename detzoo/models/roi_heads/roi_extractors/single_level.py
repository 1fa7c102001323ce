"""Pool each RoI from the one FPN level that suits its size (MMDetection ``SingleRoIExtractor``)."""
from __future__ import annotations

from typing import Sequence, Union

import torch
import torch.nn as nn

from detzoo.ops import RoIAlign, roi_align


class SingleRoIExtractor(nn.Module):
    """RoIs [K, 5] (batch index, x1, y1, x2, y2 in input pixels) -> features [K, C, S, S].

    Level of a RoI: floor(log2(sqrt(w * h) / finest_scale + 1e-6)) clamped to the levels, i.e.
    FPN's Eq. 1 with k0 = 4 and canonical size 224 (fidelity.md B.10).

    Args:
        roi_layer: an ``RoIAlign`` (its output_size, sampling_ratio and aligned are used; the
            spatial scale comes from each level's stride) or a dict of those arguments.
        out_channels: channels of the pooled features.
        featmap_strides: stride of each input level.
    """

    def __init__(self, roi_layer: Union[RoIAlign, dict], out_channels: int, featmap_strides: Sequence[int],
                 finest_scale: int = 56):
        super().__init__()
        if isinstance(roi_layer, dict):
            params = {k: v for k, v in roi_layer.items() if k != "type"}
            roi_layer = RoIAlign(spatial_scale=1.0, **params)
        size = roi_layer.output_size
        self.output_size = (size, size) if isinstance(size, int) else tuple(size)
        self.sampling_ratio = roi_layer.sampling_ratio
        self.aligned = roi_layer.aligned
        self.out_channels = out_channels
        self.featmap_strides = list(featmap_strides)
        self.finest_scale = finest_scale

    @property
    def num_inputs(self) -> int:
        return len(self.featmap_strides)

    def map_roi_levels(self, rois: torch.Tensor) -> torch.Tensor:
        scale = torch.sqrt((rois[:, 3] - rois[:, 1]) * (rois[:, 4] - rois[:, 2]))
        levels = torch.floor(torch.log2(scale / self.finest_scale + 1e-6))
        return levels.clamp(min=0, max=self.num_inputs - 1).long()

    def forward(self, feats: Sequence[torch.Tensor], rois: torch.Tensor) -> torch.Tensor:
        feats = feats[: self.num_inputs]
        out = feats[0].new_zeros((rois.shape[0], self.out_channels, *self.output_size))
        if rois.shape[0] == 0:
            return out
        levels = self.map_roi_levels(rois)
        for level, (feat, stride) in enumerate(zip(feats, self.featmap_strides)):
            inds = torch.nonzero(levels == level, as_tuple=True)[0]
            if inds.numel() > 0:
                out[inds] = roi_align(feat, rois[inds], self.output_size, 1.0 / stride,
                                      self.sampling_ratio, self.aligned).to(out.dtype)
            elif self.training:
                # keep every level in the autograd graph so distributed training sees all grads
                # (in place, as MMDetection does: no copy of the pooled features)
                out += feat.sum() * 0.0
        return out
