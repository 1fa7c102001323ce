"""Max-IoU assignment restricted to "responsible" grid cells (MMDetection ``GridAssigner``,
mmdet/models/task_modules/assigners/grid_assigner.py), used by YOLOv3.

Steps, in this order (later steps overwrite earlier ones):
1. every anchor is ignored (-1);
2. anchors whose best IoU with any ground truth is in [0, neg_iou_thr] (inclusive) become
   negative (0); a (low, high) pair means (low, high];
3. IoUs of non-responsible anchors are set to -1; a responsible anchor whose best remaining IoU
   is > pos_iou_thr (strict) becomes positive for that ground truth;
4. every ground truth whose best responsible IoU is > min_pos_iou (strict) claims the
   responsible anchors with exactly that IoU (only its argmax if not ``gt_max_assign_all``);
   later ground truths win an anchor claimed twice.
"Responsible" is a per-anchor flag: the anchor's cell holds the centre of *some* ground truth
(``YOLOAnchorGenerator.responsible_flags``), so an anchor may be matched to another box than the
one whose centre made it responsible, exactly as in MMDetection.
"""
from __future__ import annotations

from typing import Optional, Tuple, Union

import torch

from detzoo.ops import bbox_overlaps
from .assign_result import AssignResult


class GridAssigner:
    def __init__(self, pos_iou_thr: float, neg_iou_thr: Union[float, Tuple[float, float]],
                 min_pos_iou: float = 0.0, gt_max_assign_all: bool = True):
        self.pos_iou_thr = pos_iou_thr
        self.neg_iou_thr = neg_iou_thr
        self.min_pos_iou = min_pos_iou
        self.gt_max_assign_all = gt_max_assign_all

    def assign(self, bboxes: torch.Tensor, responsible_flags: torch.Tensor, gt_bboxes: torch.Tensor,
               gt_labels: Optional[torch.Tensor] = None) -> AssignResult:
        """bboxes (anchors) [N, 4], responsible_flags bool [N], gt_bboxes [G, 4], gt_labels [G]
        -> AssignResult over the N anchors (gt_inds: 0 negative, -1 ignored, i > 0 = gt i - 1;
        max_overlaps: best IoU over responsible anchors, -1 elsewhere, as the reference)."""
        num_gts, num_bboxes = gt_bboxes.shape[0], bboxes.shape[0]
        device = bboxes.device
        gt_inds = torch.full((num_bboxes,), -1, dtype=torch.long, device=device)
        if num_gts == 0 or num_bboxes == 0:
            if num_gts == 0:
                gt_inds[:] = 0
            labels = gt_inds.new_full((num_bboxes,), -1)
            return AssignResult(num_gts, gt_inds, bboxes.new_zeros((num_bboxes,)), labels)

        overlaps = bbox_overlaps(gt_bboxes, bboxes[:, :4])  # [G, N]
        max_overlaps = overlaps.max(dim=0).values
        if isinstance(self.neg_iou_thr, (int, float)):
            negative = (max_overlaps >= 0) & (max_overlaps <= self.neg_iou_thr)
        else:
            low, high = self.neg_iou_thr
            negative = (max_overlaps > low) & (max_overlaps <= high)
        gt_inds[negative] = 0

        responsible = responsible_flags.to(device=device, dtype=torch.bool)
        overlaps = overlaps.masked_fill(~responsible[None, :], -1.0)
        max_overlaps, argmax_overlaps = overlaps.max(dim=0)
        gt_max_overlaps, gt_argmax_overlaps = overlaps.max(dim=1)

        positive = (max_overlaps > self.pos_iou_thr) & responsible
        gt_inds[positive] = argmax_overlaps[positive] + 1

        qualifies = gt_max_overlaps > self.min_pos_iou  # [G]
        if self.gt_max_assign_all:
            claims = (overlaps == gt_max_overlaps[:, None]) & qualifies[:, None] & responsible[None, :]
        else:
            claims = torch.zeros_like(overlaps, dtype=torch.bool)
            rows = qualifies.nonzero(as_tuple=True)[0]
            cols = gt_argmax_overlaps[rows]
            keep = responsible[cols]
            claims[rows[keep], cols[keep]] = True
        # the reference loops over gts in order: the highest gt index claiming an anchor wins
        gt_numbers = torch.arange(1, num_gts + 1, device=device)[:, None]
        last_claim = (claims.long() * gt_numbers).max(dim=0).values
        claimed = last_claim > 0
        gt_inds[claimed] = last_claim[claimed]

        labels = gt_inds.new_full((num_bboxes,), -1)
        if gt_labels is not None:
            pos = gt_inds > 0
            labels[pos] = gt_labels[gt_inds[pos] - 1]
        return AssignResult(num_gts, gt_inds, max_overlaps, labels)

    def __repr__(self) -> str:
        return (f"GridAssigner(pos_iou_thr={self.pos_iou_thr}, neg_iou_thr={self.neg_iou_thr}, "
                f"min_pos_iou={self.min_pos_iou}, gt_max_assign_all={self.gt_max_assign_all})")
