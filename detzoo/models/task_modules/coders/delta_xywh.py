"""(dx, dy, dw, dh) box deltas, MMDetection's ``DeltaXYWHBBoxCoder`` (2.x, no +1 widths)."""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple, Union

import torch


class DeltaXYWHBBoxCoder:
    """Encode ground-truth boxes as normalised deltas from proposals, and decode them back.

    ``encode(proposals[N,4], gt[N,4]) -> deltas[N,4]`` with ``dx = (gx - px) / pw``,
    ``dw = log(gw / pw)``, then ``(delta - means) / stds``. ``decode`` inverts it, clamps
    |dw|, |dh| to ``log(1 / wh_ratio_clip)`` and (``clip_border``) clips x to [0, W], y to [0, H]
    of ``max_shape`` (the resized, unpadded image; see shared/spec/fidelity.md B.7).
    """

    def __init__(self, target_means: Sequence[float] = (0.0, 0.0, 0.0, 0.0),
                 target_stds: Sequence[float] = (1.0, 1.0, 1.0, 1.0), clip_border: bool = True,
                 add_ctr_clamp: bool = False, ctr_clamp: float = 32.0):
        self.means = tuple(float(m) for m in target_means)
        self.stds = tuple(float(s) for s in target_stds)
        self.clip_border = clip_border
        self.add_ctr_clamp = add_ctr_clamp
        self.ctr_clamp = ctr_clamp

    def encode(self, proposals: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        proposals, gt = proposals.float(), gt.float()
        pxy = (proposals[..., :2] + proposals[..., 2:]) * 0.5
        pwh = proposals[..., 2:] - proposals[..., :2]
        gxy = (gt[..., :2] + gt[..., 2:]) * 0.5
        gwh = gt[..., 2:] - gt[..., :2]
        deltas = torch.cat([(gxy - pxy) / pwh, torch.log(gwh / pwh)], dim=-1)
        means = deltas.new_tensor(self.means)
        stds = deltas.new_tensor(self.stds)
        return (deltas - means) / stds

    def decode(self, rois: torch.Tensor, deltas: torch.Tensor,
               max_shape: Optional[Union[Tuple[int, int], torch.Tensor]] = None, wh_ratio_clip: float = 16 / 1000) -> torch.Tensor:
        """rois [N, 4]; deltas [N, 4 * C] (C boxes per roi, e.g. class-specific) -> boxes [N, 4 * C].

        max_shape: (h, w) of the image the boxes live in, or a tensor [N, 2] of (h, w) per roi
            (rois of several images decoded at once); None disables clipping.
        """
        num_rois = deltas.shape[0]
        if num_rois == 0:
            return deltas.new_zeros(deltas.shape)
        deltas = deltas.reshape(num_rois, -1, 4)
        means = deltas.new_tensor(self.means)
        stds = deltas.new_tensor(self.stds)
        deltas = deltas * stds + means
        dxy, dwh = deltas[..., :2], deltas[..., 2:]
        rois = rois.reshape(num_rois, 1, 4).to(deltas.dtype)
        pxy = (rois[..., :2] + rois[..., 2:]) * 0.5
        pwh = rois[..., 2:] - rois[..., :2]
        dxy_wh = pwh * dxy
        max_ratio = abs(math.log(wh_ratio_clip))
        if self.add_ctr_clamp:
            dxy_wh = dxy_wh.clamp(-self.ctr_clamp, self.ctr_clamp)
            dwh = dwh.clamp(max=max_ratio)
        else:
            dwh = dwh.clamp(-max_ratio, max_ratio)
        gxy = pxy + dxy_wh
        gwh = pwh * dwh.exp()
        boxes = torch.cat([gxy - gwh * 0.5, gxy + gwh * 0.5], dim=-1)
        if self.clip_border and max_shape is not None:
            if isinstance(max_shape, torch.Tensor):
                wh = max_shape.to(boxes.dtype).flip(-1).reshape(num_rois, 1, 2)
                upper = torch.cat([wh, wh], dim=-1)
            else:
                h, w = max_shape[0], max_shape[1]
                upper = boxes.new_tensor([w, h, w, h])
            boxes = torch.minimum(boxes.clamp(min=0), upper)
        return boxes.reshape(num_rois, -1)
