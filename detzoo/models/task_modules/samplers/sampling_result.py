"""The positives and negatives drawn from one image's assignment."""
from __future__ import annotations

import torch

from ..assigners.assign_result import AssignResult


class SamplingResult:
    """Indices into the candidate boxes (ground truth prepended when the sampler added it).

    pos_bboxes [P, 4], neg_bboxes [Q, 4], pos_gt_bboxes [P, 4] (the matched ground truth),
    pos_assigned_gt_inds [P] (0-based), pos_gt_labels [P], pos_is_gt bool [P].
    """

    def __init__(self, pos_inds: torch.Tensor, neg_inds: torch.Tensor, bboxes: torch.Tensor,
                 gt_bboxes: torch.Tensor, assign_result: AssignResult, gt_flags: torch.Tensor):
        self.pos_inds = pos_inds
        self.neg_inds = neg_inds
        self.pos_bboxes = bboxes[pos_inds]
        self.neg_bboxes = bboxes[neg_inds]
        self.pos_is_gt = gt_flags[pos_inds]
        self.num_gts = gt_bboxes.shape[0]
        self.pos_assigned_gt_inds = assign_result.gt_inds[pos_inds] - 1
        if gt_bboxes.numel() == 0:
            self.pos_gt_bboxes = gt_bboxes.new_zeros((0, 4))
        else:
            self.pos_gt_bboxes = gt_bboxes.reshape(-1, 4)[self.pos_assigned_gt_inds]
        self.pos_gt_labels = (assign_result.labels[pos_inds] if assign_result.labels is not None
                              else None)

    @property
    def bboxes(self) -> torch.Tensor:
        """Positives then negatives: the order of the RoIs built from this sample."""
        return torch.cat([self.pos_bboxes, self.neg_bboxes])
