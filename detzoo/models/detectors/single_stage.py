"""One-stage detectors: backbone -> neck -> a dense head that predicts boxes directly."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn

from detzoo.structures import DetResult
from ..build import build_if_needed
from .base import BaseDetector


class SingleStageDetector(BaseDetector):
    """Args are built modules (or config dicts): backbone, neck (or None), bbox_head.

    ``train_cfg`` / ``test_cfg`` are the head's (MMDetection 2.x: assigner, sampler, ... /
    nms_pre, score_thr, nms, max_per_img); the detector hands them to the head.
    The head implements ``forward(feats)``, ``loss(*outs, gt_bboxes, gt_labels, img_metas,
    gt_bboxes_ignore)`` and ``predict(feats, img_metas, rescale)``.
    """

    def __init__(self, backbone: nn.Module, neck: Optional[nn.Module], bbox_head: nn.Module,
                 train_cfg: Optional[dict] = None, test_cfg: Optional[dict] = None,
                 class_names: Optional[Sequence[str]] = None):
        super().__init__(class_names)
        self.backbone = build_if_needed(backbone)
        self.neck = build_if_needed(neck)
        self.bbox_head = build_if_needed(bbox_head)
        self.bbox_head.set_cfgs(train_cfg, test_cfg)

    def loss(self, batch: dict) -> Dict[str, torch.Tensor]:
        outs = self.bbox_head(self.extract_feat(batch["img"]))
        return self.bbox_head.loss(*outs, batch["gt_bboxes"], batch["gt_labels"], batch["img_metas"],
                                   batch.get("gt_bboxes_ignore"))

    def predict(self, img: torch.Tensor, img_metas: List[dict], rescale: bool = True) -> List[DetResult]:
        return self.bbox_head.predict(self.extract_feat(img), img_metas, rescale)


class RetinaNet(SingleStageDetector):
    """RetinaNet (Lin et al., 2017): ResNet + FPN (P3-P7) + :class:`RetinaHead`, trained with the
    focal loss over every anchor (MMDetection ``RetinaNet``; config ``retinanet_r50_fpn``)."""
