"""Two-stage detectors: backbone -> neck -> RPN proposals -> RoI head."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn

from detzoo.structures import DetResult
from ..build import build_if_needed
from .base import BaseDetector


class TwoStageDetector(BaseDetector):
    """Args are built modules (or config dicts): backbone, neck, rpn_head, roi_head.

    ``train_cfg`` = dict(rpn=..., rpn_proposal=..., rcnn=...) and ``test_cfg`` = dict(rpn=...,
    rcnn=...) follow MMDetection 2.x: the detector hands each part to its head.
    """

    def __init__(self, backbone: nn.Module, neck: Optional[nn.Module], rpn_head: nn.Module, roi_head: nn.Module,
                 train_cfg: Optional[dict] = None, test_cfg: Optional[dict] = None,
                 class_names: Optional[Sequence[str]] = None):
        super().__init__(class_names)
        self.backbone = build_if_needed(backbone)
        self.neck = build_if_needed(neck)
        self.rpn_head = build_if_needed(rpn_head)
        self.roi_head = build_if_needed(roi_head)
        train_cfg = train_cfg or {}
        test_cfg = test_cfg or {}
        self.rpn_head.set_cfgs(train_cfg.get("rpn"), test_cfg.get("rpn"))
        self.rpn_head.proposal_cfg = dict(train_cfg["rpn_proposal"]) if "rpn_proposal" in train_cfg else None
        self.roi_head.set_cfgs(train_cfg.get("rcnn"), test_cfg.get("rcnn"))

    def loss(self, batch: dict) -> Dict[str, torch.Tensor]:
        feats = self.extract_feat(batch["img"])
        img_metas = batch["img_metas"]
        ignore = batch.get("gt_bboxes_ignore")
        losses, proposals = self.rpn_head.forward_train(feats, img_metas, batch["gt_bboxes"], ignore)
        losses.update(self.roi_head.forward_train(feats, img_metas, proposals, batch["gt_bboxes"],
                                                  batch["gt_labels"], ignore, gt_masks=batch.get("gt_masks")))
        return losses

    def predict(self, img: torch.Tensor, img_metas: List[dict], rescale: bool = True) -> List[DetResult]:
        feats = self.extract_feat(img)
        proposals = self.rpn_head.simple_test_rpn(feats, img_metas)
        return self.roi_head.simple_test(feats, proposals, img_metas, rescale)


class FasterRCNN(TwoStageDetector):
    """Faster R-CNN (Ren et al., 2015) with FPN: a two-stage detector with an RPN."""


class MaskRCNN(TwoStageDetector):
    """Mask R-CNN (He et al., 2017): Faster R-CNN whose RoI head also has an FCN mask branch
    (``StandardRoIHead(mask_roi_extractor=..., mask_head=FCNMaskHead(...))``). Results carry
    ``masks`` bool [N, H, W] in the original image."""


class CascadeRCNN(TwoStageDetector):
    """Cascade R-CNN and Cascade Mask R-CNN (Cai & Vasconcelos, 2018): an RPN followed by a
    ``CascadeRoIHead``; ``train_cfg['rcnn']`` is a list with one dict per stage."""
