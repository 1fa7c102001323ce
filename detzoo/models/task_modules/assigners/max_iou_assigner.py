"""Max-IoU matching of candidate boxes (anchors or proposals) to ground truth.

Semantics of MMDetection 2.x ``MaxIoUAssigner``: a candidate is negative if its best IoU is in
[0, neg_iou_thr), positive if >= pos_iou_thr; then (``match_low_quality``) every ground truth
whose best IoU >= min_pos_iou claims the candidates with that best IoU (all of them when
``gt_max_assign_all``), later ground truths winning ties. Candidates overlapping an ignore
region by IoF > ``ignore_iof_thr`` are ignored (-1).
"""
from __future__ import annotations

from typing import Optional, Tuple, Union

import torch

from detzoo.ops import bbox_overlaps
from .assign_result import AssignResult


class MaxIoUAssigner:
    def __init__(self, pos_iou_thr: float, neg_iou_thr: Union[float, Tuple[float, float]],
                 min_pos_iou: float = 0.0, gt_max_assign_all: bool = True,
                 ignore_iof_thr: float = -1, ignore_wrt_candidates: bool = True,
                 match_low_quality: bool = True, gpu_assign_thr: int = -1):
        self.pos_iou_thr = pos_iou_thr
        self.neg_iou_thr = neg_iou_thr
        self.min_pos_iou = min_pos_iou
        self.gt_max_assign_all = gt_max_assign_all
        self.ignore_iof_thr = ignore_iof_thr
        self.ignore_wrt_candidates = ignore_wrt_candidates
        self.match_low_quality = match_low_quality
        self.gpu_assign_thr = gpu_assign_thr  # accepted for config compatibility; unused

    def assign(self, bboxes: torch.Tensor, gt_bboxes: torch.Tensor,
               gt_bboxes_ignore: Optional[torch.Tensor] = None,
               gt_labels: Optional[torch.Tensor] = None) -> AssignResult:
        """bboxes [N, 4], gt_bboxes [G, 4], gt_bboxes_ignore [K, 4], gt_labels [G]."""
        bboxes = bboxes[:, :4]
        overlaps = bbox_overlaps(gt_bboxes, bboxes)  # [G, N]
        if (self.ignore_iof_thr > 0 and gt_bboxes_ignore is not None and gt_bboxes_ignore.numel() > 0
                and bboxes.numel() > 0):
            if self.ignore_wrt_candidates:
                ignore_max = bbox_overlaps(bboxes, gt_bboxes_ignore, mode="iof").max(dim=1).values
            else:
                ignore_max = bbox_overlaps(gt_bboxes_ignore, bboxes, mode="iof").max(dim=0).values
            overlaps[:, ignore_max > self.ignore_iof_thr] = -1
        return self.assign_wrt_overlaps(overlaps, gt_labels)

    def assign_wrt_overlaps(self, overlaps: torch.Tensor,
                            gt_labels: Optional[torch.Tensor] = None) -> AssignResult:
        """overlaps [G, N] -> AssignResult over the N candidates."""
        num_gts, num_bboxes = overlaps.shape
        device = overlaps.device
        gt_inds = torch.full((num_bboxes,), -1, dtype=torch.long, device=device)
        if num_gts == 0 or num_bboxes == 0:
            max_overlaps = overlaps.new_zeros((num_bboxes,))
            if num_gts == 0:
                gt_inds[:] = 0
            labels = None if gt_labels is None else gt_inds.new_full((num_bboxes,), -1)
            return AssignResult(num_gts, gt_inds, max_overlaps, labels)

        max_overlaps, argmax_overlaps = overlaps.max(dim=0)
        gt_max_overlaps, gt_argmax_overlaps = overlaps.max(dim=1)

        if isinstance(self.neg_iou_thr, (int, float)):
            negative = (max_overlaps >= 0) & (max_overlaps < self.neg_iou_thr)
        else:
            negative = (max_overlaps >= self.neg_iou_thr[0]) & (max_overlaps < self.neg_iou_thr[1])
        gt_inds[negative] = 0
        positive = max_overlaps >= self.pos_iou_thr
        gt_inds[positive] = argmax_overlaps[positive] + 1

        if self.match_low_quality:
            # Each qualifying gt claims its best candidates; the reference loops over gts in
            # order, so the highest gt index wins a candidate claimed by several.
            qualifies = gt_max_overlaps >= self.min_pos_iou  # [G]
            if self.gt_max_assign_all:
                claims = (overlaps == gt_max_overlaps[:, None]) & qualifies[:, None]  # [G, N]
            else:
                claims = torch.zeros_like(overlaps, dtype=torch.bool)
                cols = gt_argmax_overlaps[qualifies]
                claims[qualifies.nonzero(as_tuple=True)[0], cols] = True
            gt_numbers = torch.arange(1, num_gts + 1, device=device)[:, None]
            last_claim = (claims.long() * gt_numbers).max(dim=0).values  # 0 = unclaimed
            claimed = last_claim > 0
            gt_inds[claimed] = last_claim[claimed]

        labels = None
        if gt_labels is not None:
            labels = gt_inds.new_full((num_bboxes,), -1)
            pos = gt_inds > 0
            labels[pos] = gt_labels[gt_inds[pos] - 1]
        return AssignResult(num_gts, gt_inds, max_overlaps, labels)
