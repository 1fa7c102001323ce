"""Cascade R-CNN's second stage (Cai & Vasconcelos, 2018): a sequence of box heads, each trained
on the boxes the previous one refined, with rising IoU thresholds (MMDetection ``CascadeRoIHead``)."""
from __future__ import annotations

import copy
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn

from detzoo.structures import DetResult
from ..build import build_if_needed
from .base_roi_head import BaseRoIHead, assign_and_sample, boxes_to_rois, mask_forward_train


def _per_stage(component, num_stages: int, name: str) -> nn.ModuleList:
    """One built module per stage from a list, or from a single config/module (copied per stage)."""
    if isinstance(component, (list, tuple)):
        if len(component) != num_stages:
            raise ValueError(f"CascadeRoIHead: {name} has {len(component)} entries for {num_stages} stages")
        return nn.ModuleList(build_if_needed(c) for c in component)
    if isinstance(component, nn.Module):
        # a config built bottom-up arrives as one module: the other stages get copies with their
        # own random initialisation, as if each had been built from the config
        return nn.ModuleList([component] + [_reinitialized(copy.deepcopy(component)) for _ in range(num_stages - 1)])
    return nn.ModuleList(build_if_needed(component) for _ in range(num_stages))


def _reinitialized(module: nn.Module) -> nn.Module:
    """Draw fresh weights: children first (``reset_parameters``), then each module's own
    ``init_weights`` so a head's custom initialisation wins."""
    for sub in reversed(list(module.modules())):
        if hasattr(sub, "init_weights"):
            sub.init_weights()
        elif hasattr(sub, "reset_parameters"):
            sub.reset_parameters()
    return module


class CascadeRoIHead(BaseRoIHead):
    """``num_stages`` box heads (+ one mask head per stage for Cascade Mask R-CNN).

    Args:
        num_stages: usually 3.
        stage_loss_weights: multiplies stage ``i``'s losses (MMDetection: [1, 0.5, 0.25]).
        bbox_roi_extractor / bbox_head / mask_roi_extractor / mask_head: one config (or module) used
            for every stage, or a list with one per stage. Cascade configs give three box heads
            with shrinking coder stds (0.1/0.2, 0.05/0.1, 0.033/0.067) and class-agnostic regression.
        train_cfg: a list with one dict per stage (assigner, sampler, pos_weight, mask_size).
        test_cfg: score_thr, nms, max_per_img, mask_thr_binary.

    Training: stage ``i`` samples from the previous stage's refined boxes (stage 0 from the RPN
    proposals), its losses are logged as ``s{i}.loss_cls`` etc. times ``stage_loss_weights[i]``.
    Test: proposals pass through all stages, each refining the boxes with its regression (by its
    top foreground class); the class logits of all stages are averaged, the last stage's deltas
    decode the final boxes; mask probabilities are averaged over the stages' mask heads.
    """

    def __init__(self, num_stages: int, stage_loss_weights: Sequence[float],
                 bbox_roi_extractor: Union[dict, list, nn.Module], bbox_head: Union[dict, list, nn.Module],
                 mask_roi_extractor=None, mask_head=None,
                 train_cfg: Optional[List[dict]] = None, test_cfg: Optional[dict] = None):
        super().__init__()
        if len(stage_loss_weights) != num_stages:
            raise ValueError(f"CascadeRoIHead: {len(stage_loss_weights)} stage_loss_weights for {num_stages} stages")
        self.num_stages = num_stages
        self.stage_loss_weights = list(stage_loss_weights)
        self.bbox_roi_extractor = _per_stage(bbox_roi_extractor, num_stages, "bbox_roi_extractor")
        self.bbox_head = _per_stage(bbox_head, num_stages, "bbox_head")
        self.mask_head = None
        if mask_head is not None:
            self.mask_head = _per_stage(mask_head, num_stages, "mask_head")
            self.mask_roi_extractor = (_per_stage(mask_roi_extractor, num_stages, "mask_roi_extractor")
                                       if mask_roi_extractor is not None else self.bbox_roi_extractor)
        self.train_cfg: Optional[List[dict]] = None
        self.test_cfg: Optional[dict] = None
        self.set_cfgs(train_cfg, test_cfg)

    def set_cfgs(self, train_cfg: Optional[List[dict]], test_cfg: Optional[dict]) -> None:
        if train_cfg is not None:
            if isinstance(train_cfg, dict) or len(train_cfg) != self.num_stages:
                raise ValueError(f"CascadeRoIHead: train_cfg.rcnn must be a list of {self.num_stages} "
                                 "per-stage dicts (assigner, sampler, ...)")
            self.train_cfg = [self._build_stage_cfg(c) for c in train_cfg]
        if test_cfg is not None:
            self.test_cfg = dict(test_cfg)

    def forward_train(self, feats: Sequence[torch.Tensor], img_metas: List[dict], proposals: List[torch.Tensor],
                      gt_bboxes: List[torch.Tensor], gt_labels: List[torch.Tensor],
                      gt_bboxes_ignore: Optional[List[torch.Tensor]] = None,
                      gt_masks: Optional[list] = None) -> Dict[str, torch.Tensor]:
        if self.with_mask and gt_masks is None:
            raise ValueError("the model has mask heads but the batch has no 'gt_masks': load them with "
                             "LoadAnnotations(with_mask=True) and keep 'gt_masks' in Collect")
        losses: Dict[str, torch.Tensor] = {}
        stage_proposals = [p[:, :4] for p in proposals]
        for stage in range(self.num_stages):
            cfg, weight = self.train_cfg[stage], self.stage_loss_weights[stage]
            head = self.bbox_head[stage]
            samples = assign_and_sample(cfg["assigner"], cfg["sampler"], stage_proposals, gt_bboxes, gt_labels,
                                        gt_bboxes_ignore)
            rois = boxes_to_rois([s.bboxes for s in samples])
            cls_score, bbox_pred = head(self.bbox_roi_extractor[stage](feats, rois))
            targets = head.get_targets(samples, cfg.get("pos_weight", -1))
            stage_losses = head.loss(cls_score, bbox_pred, rois, *targets)
            if self.with_mask:
                stage_losses.update(mask_forward_train(self.mask_roi_extractor[stage], self.mask_head[stage], feats,
                                                       samples, gt_masks, cfg.get("mask_size", 28)))
            for name, value in stage_losses.items():
                losses[f"s{stage}.{name}"] = value * weight if "loss" in name else value
            if stage < self.num_stages - 1:
                stage_proposals = head.refine_bboxes(samples, rois, cls_score, bbox_pred, targets[0], img_metas)
        return losses

    def mask_probs(self, feats: Sequence[torch.Tensor], mask_rois: torch.Tensor,
                   labels: torch.Tensor) -> torch.Tensor:
        """Mean over stages of each mask head's sigmoid probabilities (MMDetection merge_aug_masks)."""
        probs = [head.mask_probs(head(extractor(feats, mask_rois)), labels)
                 for extractor, head in zip(self.mask_roi_extractor, self.mask_head)]
        return torch.stack(probs).mean(dim=0)

    def simple_test(self, feats: Sequence[torch.Tensor], proposals: List[torch.Tensor], img_metas: List[dict],
                    rescale: bool = True) -> List[DetResult]:
        rois = boxes_to_rois(proposals)
        img_shapes = rois.new_tensor([meta["img_shape"][:2] for meta in img_metas])
        stage_logits = []
        for stage in range(self.num_stages):
            head = self.bbox_head[stage]
            cls_score, bbox_pred = head(self.bbox_roi_extractor[stage](feats, rois))
            stage_logits.append(cls_score)
            if stage < self.num_stages - 1 and rois.shape[0] > 0:
                labels = cls_score[:, :-1].argmax(dim=1)
                refined = head.regress_by_class(rois, labels, bbox_pred, img_shapes)
                rois = torch.cat([rois[:, :1], refined], dim=1)
        # MMDetection averages the stages' logits (not their softmax) and lets the last head's
        # softmax turn them into scores (CascadeRoIHead._refine_roi)
        cls_score = torch.stack(stage_logits).mean(dim=0)
        counts = [p.shape[0] for p in proposals]
        last = self.bbox_head[-1]
        results = [last.predict_single(img_rois, scores, deltas, meta, self.test_cfg,
                                       rescale=rescale and not self.with_mask)
                   for img_rois, scores, deltas, meta in zip(rois.split(counts), cls_score.split(counts),
                                                             bbox_pred.split(counts), img_metas)]
        if self.with_mask:
            return self.add_masks(feats, results, img_metas, rescale)
        return results
