"""What every detector shares: class names, feature extraction, moving a batch's targets."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn

from detzoo.structures import DetResult


class BaseDetector(nn.Module):
    """Detectors implement ``loss(batch) -> dict`` and ``predict(img, img_metas) -> [DetResult]``.

    ``class_names`` index the 0-based labels; set from the dataset, the checkpoint's meta or the
    config (``model.class_names``).
    """

    def __init__(self, class_names: Optional[Sequence[str]] = None):
        super().__init__()
        self.class_names = tuple(class_names) if class_names is not None else None

    def extract_feat(self, img: torch.Tensor) -> Sequence[torch.Tensor]:
        """img [B, 3, H, W] -> the backbone's feature maps, through the neck when there is one
        (subclasses set ``self.backbone`` and ``self.neck``, None for no neck).

        The image is handed on channels-last: oneDNN convolutions then keep every feature map
        NHWC instead of reordering each conv's input and output (about 1.4x faster on CPU in
        float32, same results up to float rounding; docs/performance.md)."""
        feats = self.backbone(img.contiguous(memory_format=torch.channels_last) if img.dim() == 4 else img)
        return self.neck(feats) if getattr(self, "neck", None) is not None else feats

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def loss(self, batch: dict) -> Dict[str, torch.Tensor]:
        raise NotImplementedError

    def predict(self, img: torch.Tensor, img_metas: List[dict], rescale: bool = True) -> List[DetResult]:
        raise NotImplementedError

    def forward(self, img: torch.Tensor, img_metas: List[dict], rescale: bool = True) -> List[DetResult]:
        return self.predict(img, img_metas, rescale)
