"""Result containers shared by models, evaluation, visualisation and the APIs."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch


@dataclass
class DetResult:
    """Detections for one image.

    boxes:  float [N, 4], x1y1x2y2 in the original image's pixels (x2 - x1 is the width).
    scores: float [N], sorted descending.
    labels: long [N], 0-based index into the model's ``class_names``.
    masks:  bool [N, H, W] in the original image for mask models, else None.
    """

    boxes: torch.Tensor
    scores: torch.Tensor
    labels: torch.Tensor
    masks: Optional[torch.Tensor] = None

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def to(self, device) -> "DetResult":
        return DetResult(self.boxes.to(device), self.scores.to(device), self.labels.to(device),
                         None if self.masks is None else self.masks.to(device))

    def __getitem__(self, index) -> "DetResult":
        """Select detections with a bool mask, an index tensor or a slice."""
        return DetResult(self.boxes[index], self.scores[index], self.labels[index],
                         None if self.masks is None else self.masks[index])

    @staticmethod
    def empty(device=None, with_masks_shape=None) -> "DetResult":
        masks = None
        if with_masks_shape is not None:
            masks = torch.zeros((0, *with_masks_shape), dtype=torch.bool, device=device)
        return DetResult(torch.zeros((0, 4), device=device), torch.zeros((0,), device=device),
                         torch.zeros((0,), dtype=torch.long, device=device), masks)
