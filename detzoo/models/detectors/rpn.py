"""A region proposal network as a detector of its own (MMDetection ``RPN``).

Trained alone it learns class-agnostic objectness; tested it outputs proposals, which
``detzoo test ... --out proposals.pkl`` saves for Fast R-CNN and ``--eval proposal`` scores by
average recall (docs/proposals.md).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn

from detzoo.errors import ConfigError
from detzoo.ops import rescale_boxes
from detzoo.structures import DetResult
from ..build import build_if_needed
from .base import BaseDetector


def _rename_prefix(state_dict: dict, old: str, new: str) -> None:
    """In place: keys starting with ``old`` start with ``new`` instead (order kept)."""
    if not any(k.startswith(old) for k in state_dict):
        return
    items = [((new + k[len(old):]) if k.startswith(old) else k, v) for k, v in state_dict.items()]
    state_dict.clear()
    state_dict.update(items)


def _head_keys_out(module, state_dict, prefix, local_metadata) -> None:
    _rename_prefix(state_dict, prefix + RPN.LEGACY_HEAD, prefix + RPN.CKPT_HEAD)


def _head_keys_in(module, state_dict, prefix, *args) -> None:
    _rename_prefix(state_dict, prefix + RPN.CKPT_HEAD, prefix + RPN.LEGACY_HEAD)


class RPN(BaseDetector):
    """backbone -> neck -> ``RPNHead`` (the head is ``self.rpn_head``, as in MMDetection 2.x).

    Checkpoint keys: ``backbone.*``, ``neck.*`` and ``bbox_head.rpn_{conv,cls,reg}.*``. MMDetection
    3.x builds its RPN as a single-stage detector whose head is ``bbox_head``, and that is the
    layout its RPN records (shared/checkpoint-layouts/mmdet/rpn_r50_fpn_1x_coco.json), so
    ``state_dict()`` names the head ``bbox_head``; ``load_state_dict`` takes ``bbox_head.*`` and
    also the ``rpn_head.*`` of MMDetection 2.x files (the published RPN weights), as mmdet 3.x
    ``RPN._load_from_state_dict`` does. :meth:`convert_checkpoint_keys` maps a 2.x state dict to
    the 3.x names for loaders that compare keys before loading.

    ``train_cfg`` = dict(rpn=dict(assigner, sampler, allowed_border, pos_weight)) and ``test_cfg`` =
    dict(rpn=dict(nms_pre, max_per_img, nms, min_bbox_size)) as in MMDetection 2.x; both are
    handed to the head.
    """

    #: the head's name in checkpoints (mmdet 3.x) and in MMDetection 2.x files
    CKPT_HEAD, LEGACY_HEAD = "bbox_head.", "rpn_head."

    def __init__(self, backbone: nn.Module, neck: Optional[nn.Module], rpn_head: nn.Module,
                 train_cfg: Optional[dict] = None, test_cfg: Optional[dict] = None,
                 class_names: Optional[Sequence[str]] = None):
        super().__init__(class_names)
        self.backbone = build_if_needed(backbone)
        self.neck = build_if_needed(neck)
        self.rpn_head = build_if_needed(rpn_head)
        self.rpn_head.set_cfgs((train_cfg or {}).get("rpn"), (test_cfg or {}).get("rpn"))
        self.register_state_dict_post_hook(_head_keys_out)
        self.register_load_state_dict_pre_hook(_head_keys_in)

    @classmethod
    def convert_checkpoint_keys(cls, state_dict: dict) -> "OrderedDict":
        """A copy of ``state_dict`` with MMDetection 2.x ``rpn_head.*`` keys renamed to the
        ``bbox_head.*`` that ``state_dict()`` uses (when it has no ``bbox_head.*`` key yet)."""
        converted = OrderedDict(state_dict)
        if not any(k.startswith(cls.CKPT_HEAD) for k in converted):
            _rename_prefix(converted, cls.LEGACY_HEAD, cls.CKPT_HEAD)
        return converted

    def loss(self, batch: dict) -> Dict[str, torch.Tensor]:
        """Objectness (loss_rpn_cls) and box (loss_rpn_bbox) losses; labels are not needed.

        Unlike inside Faster R-CNN no proposals are computed while training (mmdet's RPN passes
        ``proposal_cfg=None`` too)."""
        if self.rpn_head.train_cfg is None:
            raise ConfigError("RPN.loss needs model.train_cfg.rpn (assigner, sampler, ...)")
        feats = self.extract_feat(batch["img"])
        cls_scores, bbox_preds = self.rpn_head(feats)
        losses = self.rpn_head.loss(cls_scores, bbox_preds, batch["gt_bboxes"], None, batch["img_metas"],
                                    batch.get("gt_bboxes_ignore"))
        return {"loss_rpn_cls": losses["loss_cls"], "loss_rpn_bbox": losses["loss_bbox"]}

    def predict(self, img: torch.Tensor, img_metas: List[dict], rescale: bool = True) -> List[DetResult]:
        """Per image the proposals as a DetResult: boxes [N, 4] (original-image pixels when
        ``rescale``, else input pixels), scores = objectness (sorted, descending), labels all 0.

        Rescaling divides by scale_factor without clipping, as MMDetection 2.x
        ``RPN.simple_test``."""
        if self.rpn_head.test_cfg is None:
            raise ConfigError("RPN.predict needs model.test_cfg.rpn (nms_pre, max_per_img, nms, ...)")
        proposals = self.rpn_head.simple_test_rpn(self.extract_feat(img), img_metas)
        results = []
        for dets, meta in zip(proposals, img_metas):
            boxes = dets[:, :4]
            if rescale:
                boxes = rescale_boxes(boxes, meta["scale_factor"])
            labels = torch.zeros(dets.shape[0], dtype=torch.long, device=dets.device)
            results.append(DetResult(boxes, dets[:, 4], labels))
        return results
