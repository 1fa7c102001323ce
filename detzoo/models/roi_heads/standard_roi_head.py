"""The second stage of Faster / Mask R-CNN: sample proposals, pool, classify, refine boxes and
(optionally) segment each detection."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn

from detzoo.structures import DetResult
from ..build import build_if_needed
from .base_roi_head import BaseRoIHead, assign_and_sample, boxes_to_rois, mask_forward_train

__all__ = ["StandardRoIHead", "boxes_to_rois"]


class StandardRoIHead(BaseRoIHead):
    """Box branch (+ mask branch when ``mask_head`` is given) of a two-stage detector
    (MMDetection ``StandardRoIHead``).

    Training (``train_cfg``: assigner, sampler, pos_weight, mask_size): per image, assign proposals
    to ground truth, sample positives/negatives (ground truth added as proposals), pool their
    features and compute the box losses; the mask head is trained on the positives only, against
    the ground-truth masks cropped to each positive box at ``mask_size``. Test (``test_cfg``:
    score_thr, nms, max_per_img, mask_thr_binary): pool the proposals, score, decode per class,
    class-wise NMS; masks are predicted for the kept boxes and pasted into the image.

    ``mask_roi_extractor=None`` with a mask head re-uses the box branch's extractor.

    ``shared_head`` (C4 R-CNNs: a :class:`~detzoo.models.roi_heads.ResLayer`, the res5 stage)
    runs on every pooled RoI before the box head and, for masks, before the mask head. With a
    shared extractor, training feeds the mask head the positives' rows of the box branch's
    shared-head output, as MMDetection does (``bbox_feats[pos_inds]``).
    """

    def __init__(self, bbox_roi_extractor: nn.Module, bbox_head: nn.Module,
                 mask_roi_extractor: Optional[nn.Module] = None, mask_head: Optional[nn.Module] = None,
                 train_cfg: Optional[dict] = None, test_cfg: Optional[dict] = None,
                 shared_head: Optional[nn.Module] = None):
        super().__init__()
        self.shared_head = build_if_needed(shared_head)
        self.bbox_roi_extractor = build_if_needed(bbox_roi_extractor)
        self.bbox_head = build_if_needed(bbox_head)
        self.mask_head = build_if_needed(mask_head)
        if self.mask_head is not None:
            self.mask_roi_extractor = (build_if_needed(mask_roi_extractor) if mask_roi_extractor is not None
                                       else self.bbox_roi_extractor)
        self.train_cfg: Optional[dict] = None
        self.test_cfg: Optional[dict] = None
        self.set_cfgs(train_cfg, test_cfg)

    @property
    def with_shared_head(self) -> bool:
        return self.shared_head is not None

    def _pool(self, extractor: nn.Module, feats: Sequence[torch.Tensor], rois: torch.Tensor) -> torch.Tensor:
        """RoI features [K, C, S, S] from ``extractor``, through the shared head when there is one."""
        x = extractor(feats, rois)
        return self.shared_head(x) if self.shared_head is not None else x

    def set_cfgs(self, train_cfg: Optional[dict], test_cfg: Optional[dict]) -> None:
        if train_cfg is not None:
            self.train_cfg = self._build_stage_cfg(train_cfg)
        if test_cfg is not None:
            self.test_cfg = dict(test_cfg)

    def forward_train(self, feats: Sequence[torch.Tensor], img_metas: List[dict], proposals: List[torch.Tensor],
                      gt_bboxes: List[torch.Tensor], gt_labels: List[torch.Tensor],
                      gt_bboxes_ignore: Optional[List[torch.Tensor]] = None,
                      gt_masks: Optional[list] = None) -> Dict[str, torch.Tensor]:
        cfg = self.train_cfg
        samples = assign_and_sample(cfg["assigner"], cfg["sampler"], proposals, gt_bboxes, gt_labels,
                                    gt_bboxes_ignore)
        rois = boxes_to_rois([s.bboxes for s in samples])
        bbox_feats = self._pool(self.bbox_roi_extractor, feats, rois)
        cls_score, bbox_pred = self.bbox_head(bbox_feats)
        targets = self.bbox_head.get_targets(samples, cfg.get("pos_weight", -1))
        losses = self.bbox_head.loss(cls_score, bbox_pred, rois, *targets)
        if self.with_mask:
            if gt_masks is None:
                raise ValueError("the model has a mask head but the batch has no 'gt_masks': load them with "
                                 "LoadAnnotations(with_mask=True) and keep 'gt_masks' in Collect")
            mask_feats = None
            if self.with_shared_head:
                if self.mask_roi_extractor is self.bbox_roi_extractor:
                    # RoIs are laid out image by image, positives first (SamplingResult.bboxes)
                    is_pos = torch.cat([torch.cat([s.pos_bboxes.new_ones(len(s.pos_bboxes), dtype=torch.bool),
                                                   s.neg_bboxes.new_zeros(len(s.neg_bboxes), dtype=torch.bool)])
                                        for s in samples])
                    mask_feats = bbox_feats[is_pos]
                else:
                    mask_feats = self._pool(self.mask_roi_extractor, feats,
                                            boxes_to_rois([s.pos_bboxes for s in samples]))
            losses.update(mask_forward_train(self.mask_roi_extractor, self.mask_head, feats, samples, gt_masks,
                                             cfg.get("mask_size", 28), mask_feats=mask_feats))
        return losses

    def mask_probs(self, feats: Sequence[torch.Tensor], mask_rois: torch.Tensor,
                   labels: torch.Tensor) -> torch.Tensor:
        logits = self.mask_head(self._pool(self.mask_roi_extractor, feats, mask_rois))
        return self.mask_head.mask_probs(logits, labels)

    def simple_test(self, feats: Sequence[torch.Tensor], proposals: List[torch.Tensor], img_metas: List[dict],
                    rescale: bool = True) -> List[DetResult]:
        rois = boxes_to_rois(proposals)
        cls_score, bbox_pred = self.bbox_head(self._pool(self.bbox_roi_extractor, feats, rois))
        counts = [p.shape[0] for p in proposals]
        results = []
        for img_rois, scores, deltas, meta in zip(rois.split(counts), cls_score.split(counts),
                                                  bbox_pred.split(counts), img_metas):
            # with masks, boxes stay in input pixels until the masks have been pooled from them and
            # are rescaled after NMS (MMDetection 3.x StandardRoIHead.predict: bbox_rescale=False)
            results.append(self.bbox_head.predict_single(img_rois, scores, deltas, meta, self.test_cfg,
                                                         rescale=rescale and not self.with_mask))
        if self.with_mask:
            return self.add_masks(feats, results, img_metas, rescale)
        return results
