"""The outcome of matching candidate boxes to ground truth."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch


@dataclass
class AssignResult:
    """For N candidate boxes and G ground-truth boxes.

    gt_inds: long [N]; 0 = negative, -1 = ignored, i > 0 = matched to ground truth i - 1.
    max_overlaps: float [N], the best IoU of each candidate.
    labels: long [N], the matched ground truth's label, -1 where not positive.
    """

    num_gts: int
    gt_inds: torch.Tensor
    max_overlaps: torch.Tensor
    labels: Optional[torch.Tensor] = None

    def add_gt_(self, gt_labels: torch.Tensor) -> None:
        """Prepend the ground truth boxes themselves as positives (used when the sampler
        adds ground truth to the proposals)."""
        self_inds = torch.arange(1, len(gt_labels) + 1, dtype=torch.long, device=gt_labels.device)
        self.gt_inds = torch.cat([self_inds, self.gt_inds])
        self.max_overlaps = torch.cat([self.max_overlaps.new_ones(len(gt_labels)), self.max_overlaps])
        if self.labels is not None:
            self.labels = torch.cat([gt_labels, self.labels])
