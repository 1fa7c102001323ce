"""(dx, dy, dw, dh) deltas with Detectron-1 "+1" widths, as PaddlePaddle computes them.

Facts (PaddlePaddle ``paddle/fluid/operators/detection``):

- decode, both in ``bbox_util.h`` ``BoxCoder`` (``generate_proposals``, pixel_offset) and in
  ``box_coder_op.h`` ``DecodeCenterSize`` (``box_normalized=False``): ``w = x2 - x1 + 1``,
  ``cx = x1 + w / 2``; ``cx' = var_x * dx * w + cx``, ``w' = exp(var_w * dw) * w``; the box is
  ``(cx' - w'/2, cy' - h'/2, cx' + w'/2 - 1, cy' + h'/2 - 1)``;
- ``generate_proposals`` clamps ``var_w * dw`` from above only, at ``log(1000 / 16)``
  (``kBBoxClipDefault``); the R-CNN head's ``box_coder`` op clamps nothing;
- encode (``bbox_util.h`` ``BoxToDelta``, the R-CNN targets): ``dx = (gcx - cx) / w``,
  ``dw = log(gw / w)`` with the same widths and centres, divided by the weights (variances);
- clipping (``ClipTiledBoxes``, ``box_clip``): x to ``[0, W - 1]``, y to ``[0, H - 1]``.

MMDetection's ``LegacyDeltaXYWHBBoxCoder`` is the same arithmetic in another operation order
(``x1 = cx - w/2 + 0.5`` around ``cx = (x1 + x2) / 2``) and clamps |dw| from both sides; pick
that with ``dwh_clamp="both"``.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple, Union

import torch

from detzoo.errors import ConfigError

_CLAMPS = ("upper", "both", "none")


class LegacyDeltaXYWHBBoxCoder:
    """Encode / decode ``[N, 4]`` boxes as deltas of boxes whose width is ``x2 - x1 + offset``.

    Args:
        target_means, target_stds: deltas are ``(raw - mean) / std`` (Paddle's variances are the
            stds: (1, 1, 1, 1) for the RPN, (0.1, 0.1, 0.2, 0.2) for the R-CNN head).
        clip_border: clip decoded boxes to ``[0, W - offset] x [0, H - offset]`` of max_shape.
        offset: 1 for Detectron-1 / Paddle pixel boxes (0 turns this into a plain coder).
        dwh_clamp: "upper" (Paddle generate_proposals: ``min(dw, log(1000/16))``), "none"
            (Paddle box_coder op) or "both" (MMDetection legacy: ``|dw| <= log(1000/16)``).
    """

    def __init__(self, target_means: Sequence[float] = (0.0, 0.0, 0.0, 0.0),
                 target_stds: Sequence[float] = (1.0, 1.0, 1.0, 1.0), clip_border: bool = True,
                 offset: float = 1.0, dwh_clamp: str = "upper"):
        if dwh_clamp not in _CLAMPS:
            raise ConfigError(f"LegacyDeltaXYWHBBoxCoder: dwh_clamp must be one of {_CLAMPS}, "
                              f"got {dwh_clamp!r}")
        self.means = tuple(float(m) for m in target_means)
        self.stds = tuple(float(s) for s in target_stds)
        self.clip_border = clip_border
        self.offset = float(offset)
        self.dwh_clamp = dwh_clamp

    def _centre_size(self, boxes: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        wh = boxes[..., 2:] - boxes[..., :2] + self.offset
        return boxes[..., :2] + 0.5 * wh, wh

    def encode(self, proposals: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        """proposals, gt ``[N, 4]`` -> normalised deltas ``[N, 4]`` (Paddle ``BoxToDelta``)."""
        pxy, pwh = self._centre_size(proposals.float())
        gxy, gwh = self._centre_size(gt.float())
        deltas = torch.cat([(gxy - pxy) / pwh, torch.log(gwh / pwh)], dim=-1)
        return (deltas - deltas.new_tensor(self.means)) / deltas.new_tensor(self.stds)

    def decode(self, rois: torch.Tensor, deltas: torch.Tensor,
               max_shape: Optional[Union[Tuple[float, float], torch.Tensor]] = None,
               wh_ratio_clip: float = 16 / 1000) -> torch.Tensor:
        """rois ``[N, 4]``, deltas ``[N, 4 * C]`` -> boxes ``[N, 4 * C]``.

        max_shape: (h, w) (floats allowed: Paddle clips to its im_info sizes), or a tensor
        ``[N, 2]`` of (h, w) per roi; None disables clipping.
        """
        num_rois = deltas.shape[0]
        if num_rois == 0:
            return deltas.new_zeros(deltas.shape)
        deltas = deltas.reshape(num_rois, -1, 4)
        deltas = deltas * deltas.new_tensor(self.stds) + deltas.new_tensor(self.means)
        rois = rois.reshape(num_rois, 1, 4).to(deltas.dtype)
        pxy, pwh = self._centre_size(rois)
        dwh = deltas[..., 2:]
        max_ratio = abs(math.log(wh_ratio_clip))
        if self.dwh_clamp == "upper":
            dwh = dwh.clamp(max=max_ratio)
        elif self.dwh_clamp == "both":
            dwh = dwh.clamp(-max_ratio, max_ratio)
        gxy = deltas[..., :2] * pwh + pxy
        gwh = torch.exp(dwh) * pwh
        boxes = torch.cat([gxy - gwh / 2, gxy + gwh / 2 - self.offset], dim=-1)
        if self.clip_border and max_shape is not None:
            if isinstance(max_shape, torch.Tensor):
                wh = max_shape.to(boxes.dtype).flip(-1).reshape(num_rois, 1, 2) - self.offset
                upper = torch.cat([wh, wh], dim=-1)
            else:
                h, w = float(max_shape[0]) - self.offset, float(max_shape[1]) - self.offset
                upper = boxes.new_tensor([w, h, w, h])
            # Paddle: max(min(v, upper), 0)
            boxes = torch.minimum(boxes, upper).clamp(min=0)
        return boxes.reshape(num_rois, -1)
