"""Uniform random sampling of positives and negatives (MMDetection's ``RandomSampler``)."""
from __future__ import annotations

from typing import Optional

import torch

from ..assigners.assign_result import AssignResult
from .sampling_result import SamplingResult


def _random_choice(inds: torch.Tensor, num: int) -> torch.Tensor:
    if inds.numel() <= num:
        return inds
    perm = torch.randperm(inds.numel(), device=inds.device)[:num]
    return inds[perm]


class RandomSampler:
    """Draw up to ``num`` candidates, at most ``num * pos_fraction`` of them positive.

    neg_pos_ub >= 0 caps negatives at ``neg_pos_ub * positives``; ``add_gt_as_proposals``
    prepends the ground truth boxes to the candidates (they are always positives).
    """

    def __init__(self, num: int, pos_fraction: float, neg_pos_ub: int = -1,
                 add_gt_as_proposals: bool = True):
        self.num = num
        self.pos_fraction = pos_fraction
        self.neg_pos_ub = neg_pos_ub
        self.add_gt_as_proposals = add_gt_as_proposals

    def sample(self, assign_result: AssignResult, bboxes: torch.Tensor, gt_bboxes: torch.Tensor,
               gt_labels: Optional[torch.Tensor] = None) -> SamplingResult:
        bboxes = bboxes[:, :4]
        gt_flags = bboxes.new_zeros((bboxes.shape[0],), dtype=torch.bool)
        if self.add_gt_as_proposals and len(gt_bboxes) > 0:
            if gt_labels is None:
                raise ValueError("gt_labels are needed to add ground truth as proposals")
            bboxes = torch.cat([gt_bboxes, bboxes], dim=0)
            assign_result.add_gt_(gt_labels)
            gt_flags = torch.cat([gt_flags.new_ones(gt_bboxes.shape[0]), gt_flags])

        num_expected_pos = int(self.num * self.pos_fraction)
        pos_inds = _random_choice(torch.nonzero(assign_result.gt_inds > 0, as_tuple=True)[0], num_expected_pos)
        num_expected_neg = self.num - pos_inds.numel()
        if self.neg_pos_ub >= 0:
            neg_upper_bound = int(self.neg_pos_ub * max(1, pos_inds.numel()))
            num_expected_neg = min(num_expected_neg, neg_upper_bound)
        neg_inds = _random_choice(torch.nonzero(assign_result.gt_inds == 0, as_tuple=True)[0], num_expected_neg)
        return SamplingResult(pos_inds, neg_inds, bboxes, gt_bboxes, assign_result, gt_flags)


class PseudoSampler:
    """Take every positive and negative (for heads that weight all anchors, e.g. RetinaNet)."""

    def sample(self, assign_result: AssignResult, bboxes: torch.Tensor, gt_bboxes: torch.Tensor,
               gt_labels: Optional[torch.Tensor] = None) -> SamplingResult:
        pos_inds = torch.nonzero(assign_result.gt_inds > 0, as_tuple=True)[0]
        neg_inds = torch.nonzero(assign_result.gt_inds == 0, as_tuple=True)[0]
        gt_flags = bboxes.new_zeros((bboxes.shape[0],), dtype=torch.bool)
        return SamplingResult(pos_inds, neg_inds, bboxes[:, :4], gt_bboxes, assign_result, gt_flags)
