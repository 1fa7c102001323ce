"""Fast R-CNN (Girshick, 2015): an R-CNN second stage on precomputed proposals (MMDetection
``FastRCNN``). The proposals come from a proposal file (``CocoDataset(proposal_file=...)`` +
``LoadProposals``), e.g. one written by an RPN (docs/proposals.md)."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn

from detzoo.errors import ConfigError, DataError
from detzoo.structures import DetResult
from ..build import build_if_needed
from .base import BaseDetector

_NO_PROPOSALS = ("the batch has no 'proposals': Fast R-CNN needs precomputed proposals (set the "
                 "dataset's proposal_file, put LoadProposals in the pipeline and 'proposals' in "
                 "Collect's keys)")


class FastRCNN(BaseDetector):
    """backbone -> neck -> RoI head (``StandardRoIHead``) over given proposals.

    ``train_cfg`` = dict(rcnn=dict(assigner, sampler, pos_weight)) and ``test_cfg`` =
    dict(rcnn=dict(score_thr, nms, max_per_img)) as in MMDetection 2.x. State-dict keys are
    Faster R-CNN's without ``rpn_head.*``.
    """

    def __init__(self, backbone: nn.Module, neck: Optional[nn.Module], roi_head: nn.Module,
                 train_cfg: Optional[dict] = None, test_cfg: Optional[dict] = None,
                 class_names: Optional[Sequence[str]] = None):
        super().__init__(class_names)
        self.backbone = build_if_needed(backbone)
        self.neck = build_if_needed(neck)
        self.roi_head = build_if_needed(roi_head)
        self.roi_head.set_cfgs((train_cfg or {}).get("rcnn"), (test_cfg or {}).get("rcnn"))

    @staticmethod
    def _check_proposals(proposals, num_images: int, device, dtype) -> List[torch.Tensor]:
        if proposals is None:
            raise DataError(_NO_PROPOSALS)
        if len(proposals) != num_images:
            raise DataError(f"{len(proposals)} proposal sets for a batch of {num_images} images")
        checked = []
        for i, props in enumerate(proposals):
            props = torch.as_tensor(props)
            if props.dim() != 2 or props.shape[1] not in (4, 5):
                raise DataError(f"proposals of image {i} must be [N, 4] or [N, 5], got "
                                f"{tuple(props.shape)}")
            checked.append(props.to(device=device, dtype=dtype))
        return checked

    def loss(self, batch: dict) -> Dict[str, torch.Tensor]:
        """The RoI head's losses (loss_cls, acc, loss_bbox) on ``batch['proposals']``: per image a
        [N, 4|5] tensor in input pixels (after Resize/Flip, like gt_bboxes)."""
        if self.roi_head.train_cfg is None:
            raise ConfigError("FastRCNN.loss needs model.train_cfg.rcnn (assigner, sampler, ...)")
        img = batch["img"]
        proposals = self._check_proposals(batch.get("proposals"), img.shape[0], img.device, img.dtype)
        feats = self.extract_feat(img)
        extra = {"gt_masks": batch["gt_masks"]} if "gt_masks" in batch else {}
        return self.roi_head.forward_train(feats, batch["img_metas"], proposals, batch["gt_bboxes"],
                                           batch["gt_labels"], batch.get("gt_bboxes_ignore"), **extra)

    def predict(self, img: torch.Tensor, img_metas: List[dict], rescale: bool = True,
                proposals: Optional[List[torch.Tensor]] = None) -> List[DetResult]:
        """Detections from ``proposals`` (per image [N, 4|5] in input pixels, required)."""
        if self.roi_head.test_cfg is None:
            raise ConfigError("FastRCNN.predict needs model.test_cfg.rcnn (score_thr, nms, max_per_img)")
        proposals = self._check_proposals(proposals, img.shape[0], img.device, img.dtype)
        return self.roi_head.simple_test(self.extract_feat(img), proposals, img_metas, rescale)

    def forward(self, img: torch.Tensor, img_metas: List[dict], rescale: bool = True,
                proposals: Optional[List[torch.Tensor]] = None) -> List[DetResult]:
        return self.predict(img, img_metas, rescale, proposals=proposals)
