"""Adaptive Training Sample Selection (Zhang et al., 2020), MMDetection's ``ATSSAssigner``.

For each ground truth: on every pyramid level take the ``topk`` priors whose centres are closest
to the gt centre (Euclidean); among those candidates the IoU threshold is mean + std (unbiased)
of their IoUs with the gt; a candidate is positive if its IoU >= the threshold and its centre
lies inside the gt by more than 0.01 px on every side. A prior positive for several gts goes to
the one it overlaps most (the lowest gt index on exact ties).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from detzoo.errors import ConfigError
from detzoo.ops import bbox_overlaps
from .assign_result import AssignResult

_INF = 100000000.0


class ATSSAssigner:
    """Args:
        topk: candidates per level and gt.
        ignore_iof_thr: priors overlapping an ignore region by IoF > this are ignored (-1);
            <= 0 disables.
        alpha: the DDOD cost-based variant; not implemented, must stay None.
    """

    def __init__(self, topk: int, ignore_iof_thr: float = -1, alpha: Optional[float] = None):
        if alpha is not None:
            raise ConfigError(f"ATSSAssigner(alpha={alpha!r}): the DDOD cost-based variant is not "
                              "implemented; leave alpha unset")
        self.topk = topk
        self.ignore_iof_thr = ignore_iof_thr

    def assign(self, priors: torch.Tensor, num_level_priors: Sequence[int], gt_bboxes: torch.Tensor,
               gt_bboxes_ignore: Optional[torch.Tensor] = None,
               gt_labels: Optional[torch.Tensor] = None) -> AssignResult:
        """priors [N, 4] (all levels, in level order), num_level_priors: N per level,
        gt_bboxes [G, 4], gt_bboxes_ignore [K, 4], gt_labels [G] -> AssignResult over the priors.

        ``max_overlaps`` holds the IoU with the assigned gt for positives and -1e8 elsewhere
        (as the reference does).
        """
        priors = priors[:, :4]
        num_priors, num_gts = priors.shape[0], gt_bboxes.shape[0]
        if sum(num_level_priors) != num_priors:
            raise ValueError(f"ATSSAssigner: num_level_priors sums to {sum(num_level_priors)} but "
                             f"{num_priors} priors were given")
        gt_inds = priors.new_zeros((num_priors,), dtype=torch.long)
        if num_gts == 0 or num_priors == 0:
            labels = None if gt_labels is None else gt_inds.new_full((num_priors,), -1)
            return AssignResult(num_gts, gt_inds, priors.new_zeros((num_priors,)), labels)

        overlaps = bbox_overlaps(priors, gt_bboxes)  # [N, G]
        gt_centres = (gt_bboxes[:, :2] + gt_bboxes[:, 2:]) / 2.0
        prior_centres = (priors[:, :2] + priors[:, 2:]) / 2.0
        distances = (prior_centres[:, None, :] - gt_centres[None, :, :]).pow(2).sum(-1).sqrt()

        if (self.ignore_iof_thr > 0 and gt_bboxes_ignore is not None and gt_bboxes_ignore.numel() > 0):
            ignored = bbox_overlaps(priors, gt_bboxes_ignore, mode="iof").max(dim=1).values > self.ignore_iof_thr
            distances[ignored, :] = _INF
            gt_inds[ignored] = -1

        candidates = []  # per level [k_l, G] prior indices
        start = 0
        for count in num_level_priors:
            if count > 0:
                k = min(self.topk, count)
                candidates.append(distances[start:start + count].topk(k, dim=0, largest=False).indices + start)
            start += count
        candidates = torch.cat(candidates, dim=0)  # [K, G]
        gt_columns = torch.arange(num_gts, device=priors.device)[None, :].expand_as(candidates)
        candidate_overlaps = overlaps[candidates, gt_columns]
        threshold = candidate_overlaps.mean(0) + candidate_overlaps.std(0)
        positive = candidate_overlaps >= threshold[None, :]

        cx, cy = prior_centres[candidates, 0], prior_centres[candidates, 1]
        margins = torch.stack([cx - gt_bboxes[:, 0], cy - gt_bboxes[:, 1],
                               gt_bboxes[:, 2] - cx, gt_bboxes[:, 3] - cy], dim=-1)
        positive &= margins.min(dim=-1).values > 0.01

        # [G, N]: the IoU where (gt, prior) is a positive pair, -INF elsewhere; the best gt wins
        pair_overlaps = overlaps.new_full((num_gts, num_priors), -_INF)
        rows, cols = gt_columns[positive], candidates[positive]
        pair_overlaps[rows, cols] = overlaps[cols, rows]
        max_overlaps, best_gt = pair_overlaps.max(dim=0)
        assigned = max_overlaps != -_INF
        gt_inds[assigned] = best_gt[assigned] + 1

        labels = None
        if gt_labels is not None:
            labels = gt_inds.new_full((num_priors,), -1)
            labels[assigned] = gt_labels[best_gt[assigned]]
        return AssignResult(num_gts, gt_inds, max_overlaps, labels)
