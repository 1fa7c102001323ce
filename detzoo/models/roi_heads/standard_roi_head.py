"""The second stage of Faster R-CNN: sample proposals, pool, classify and refine boxes."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn

from detzoo.structures import DetResult
from ..build import build_if_needed


def boxes_to_rois(box_lists: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per image [K_i, >=4] boxes -> [sum K_i, 5] RoIs whose first column is the image index."""
    rois = [torch.cat([b.new_full((b.shape[0], 1), i), b[:, :4]], dim=1) for i, b in enumerate(box_lists)]
    return torch.cat(rois, dim=0)


class StandardRoIHead(nn.Module):
    """Box branch of a two-stage detector (MMDetection ``StandardRoIHead``, boxes only for now).

    Training (``train_cfg``: assigner, sampler, pos_weight): per image, assign proposals to ground
    truth, sample positives/negatives (ground truth added as proposals), pool their features and
    compute the box head losses. Test (``test_cfg``: score_thr, nms, max_per_img): pool the
    proposals, score, decode per class, rescale, class-wise NMS.
    """

    def __init__(self, bbox_roi_extractor: nn.Module, bbox_head: nn.Module,
                 train_cfg: Optional[dict] = None, test_cfg: Optional[dict] = None):
        super().__init__()
        self.bbox_roi_extractor = build_if_needed(bbox_roi_extractor)
        self.bbox_head = build_if_needed(bbox_head)
        self.train_cfg: Optional[dict] = None
        self.test_cfg: Optional[dict] = None
        self.set_cfgs(train_cfg, test_cfg)

    def set_cfgs(self, train_cfg: Optional[dict], test_cfg: Optional[dict]) -> None:
        if train_cfg is not None:
            train_cfg = dict(train_cfg)
            train_cfg["assigner"] = build_if_needed(train_cfg["assigner"])
            train_cfg["sampler"] = build_if_needed(train_cfg["sampler"])
            self.train_cfg = train_cfg
        if test_cfg is not None:
            self.test_cfg = dict(test_cfg)

    def forward_train(self, feats: Sequence[torch.Tensor], img_metas: List[dict], proposals: List[torch.Tensor],
                      gt_bboxes: List[torch.Tensor], gt_labels: List[torch.Tensor],
                      gt_bboxes_ignore: Optional[List[torch.Tensor]] = None) -> Dict[str, torch.Tensor]:
        assigner, sampler = self.train_cfg["assigner"], self.train_cfg["sampler"]
        samples = []
        for i in range(len(img_metas)):
            boxes = proposals[i][:, :4]
            ignore = None if gt_bboxes_ignore is None else gt_bboxes_ignore[i]
            assign_result = assigner.assign(boxes, gt_bboxes[i], ignore, gt_labels[i])
            samples.append(sampler.sample(assign_result, boxes, gt_bboxes[i], gt_labels[i]))
        rois = boxes_to_rois([s.bboxes for s in samples])
        cls_score, bbox_pred = self.bbox_head(self.bbox_roi_extractor(feats, rois))
        targets = self.bbox_head.get_targets(samples, self.train_cfg.get("pos_weight", -1))
        return self.bbox_head.loss(cls_score, bbox_pred, rois, *targets)

    def simple_test(self, feats: Sequence[torch.Tensor], proposals: List[torch.Tensor], img_metas: List[dict],
                    rescale: bool = True) -> List[DetResult]:
        rois = boxes_to_rois(proposals)
        cls_score, bbox_pred = self.bbox_head(self.bbox_roi_extractor(feats, rois))
        counts = [p.shape[0] for p in proposals]
        results = []
        for img_rois, scores, deltas, meta in zip(rois.split(counts), cls_score.split(counts),
                                                  bbox_pred.split(counts), img_metas):
            results.append(self.bbox_head.predict_single(img_rois, scores, deltas, meta, self.test_cfg, rescale))
        return results
