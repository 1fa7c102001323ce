"""The dense parts of a detector as plain tensor-in / tensors-out modules, ready for export.

What is exported (inside the graph) is the arithmetic that has static shapes: backbone, neck and
head convolutions, and for two-stage detectors the box head's fully connected layers. Everything
data-dependent stays outside and runs detzoo's own PyTorch code on the graph outputs, so the
detections of the exported model equal PyTorch's up to float noise in the dense part:

- one-stage (RetinaNet, YOLOv3, ...): graph ``dense`` = img -> the head's per-level maps;
  outside: priors, score filtering / top-k, box decoding, rescaling, NMS
  (``bbox_head.predict_by_feat``).
- two-stage (Faster R-CNN): graph ``dense`` = img -> the FPN levels the RoI extractor reads +
  RPN per-level maps; outside: proposals (``rpn_head.proposals``) and RoIAlign
  (``roi_head.bbox_roi_extractor``); graph ``bbox_head`` = pooled RoI features [K, C, S, S] ->
  (cls_score [K, num_classes + 1], bbox_pred [K, 4 * num_classes]); outside again: softmax,
  decoding, rescaling, class-wise NMS (``bbox_head.predict_single``).
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import torch
import torch.nn as nn

from detzoo.errors import ConfigError

SINGLE_STAGE = "single_stage"
TWO_STAGE = "two_stage"


def _head_output_names(head: nn.Module, num_groups: int) -> List[str]:
    """Names of the groups a one-stage head's ``forward`` returns (each a per-level list)."""
    from detzoo.models.dense_heads.yolo_head import YOLOV3Head

    if isinstance(head, YOLOV3Head):
        return ["pred_map"]
    return ["cls_score", "bbox_pred", "score_factor"][:num_groups]


def detector_kind(model: nn.Module, where: str = "model") -> str:
    """SINGLE_STAGE or TWO_STAGE when the exported graphs + detzoo post-processing reproduce
    ``model.predict`` exactly; a ConfigError naming what is unsupported otherwise."""
    from detzoo.models.dense_heads.base_dense_head import BaseDenseHead
    from detzoo.models.dense_heads.rpn_head import RPNHead
    from detzoo.models.dense_heads.yolo_head import YOLOV3Head
    from detzoo.models.detectors.single_stage import SingleStageDetector
    from detzoo.models.detectors.two_stage import TwoStageDetector
    from detzoo.models.roi_heads.bbox_heads import ConvFCBBoxHead
    from detzoo.models.roi_heads.standard_roi_head import StandardRoIHead

    name = type(model).__name__
    if isinstance(model, SingleStageDetector) and type(model).predict is SingleStageDetector.predict:
        head = model.bbox_head
        # heads whose predict is "forward, then predict_by_feat on the outputs"
        if type(head).predict in (BaseDenseHead.predict, YOLOV3Head.predict):
            return SINGLE_STAGE
        raise ConfigError(f"{where}: {name} with head {type(head).__name__} cannot be exported to ONNX: its "
                          "test-time predict is not forward + predict_by_feat (supported: RetinaNet, YOLOv3 and "
                          "other one-stage detectors with a BaseDenseHead)")
    if isinstance(model, TwoStageDetector) and type(model).predict is TwoStageDetector.predict:
        roi_head = model.roi_head
        shared_head = getattr(roi_head, "shared_head", None) is not None  # C4: res5 runs on each RoI
        if (type(roi_head).simple_test is StandardRoIHead.simple_test and not roi_head.with_mask
                and not shared_head and isinstance(model.rpn_head, RPNHead)
                and isinstance(roi_head.bbox_head, ConvFCBBoxHead)):
            return TWO_STAGE
        extra = (" (with a mask head)" if getattr(roi_head, "with_mask", False) else
                 " (with a shared res5 head, C4)" if shared_head else "")
        raise ConfigError(f"{where}: {name} with RoI head {type(roi_head).__name__}{extra} cannot be "
                          "exported to ONNX: supported two-stage models are Faster R-CNN-style (RPNHead + "
                          "StandardRoIHead with a box head only)")
    raise ConfigError(f"{where}: {name} cannot be exported to ONNX (supported: Faster R-CNN, RetinaNet, YOLOv3 "
                      "and other one-stage detectors with a BaseDenseHead)")


class SingleStageGraph(nn.Module):
    """img [B, 3, H, W] -> the head's outputs flattened level by level within each group:
    (group0_level0, ..., group0_levelL-1, group1_level0, ...); each [B, C_g, H_l, W_l]."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, img: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        outs = self.model.bbox_head(self.model.extract_feat(img))
        return tuple(t for group in outs for t in group)


class TwoStageDenseGraph(nn.Module):
    """img [B, 3, H, W] -> (feat_0..feat_{F-1}, rpn_cls_0..rpn_cls_{L-1}, rpn_reg_0..rpn_reg_{L-1}):
    the F FPN levels the RoI extractor reads and the RPN's per-level objectness / delta maps."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.num_roi_feats = model.roi_head.bbox_roi_extractor.num_inputs

    def forward(self, img: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        feats = self.model.extract_feat(img)
        rpn_cls, rpn_reg = self.model.rpn_head(feats)
        return tuple(feats[: self.num_roi_feats]) + tuple(rpn_cls) + tuple(rpn_reg)


class BoxHeadGraph(nn.Module):
    """Pooled RoI features [K, C, S, S] -> (cls_score [K, num_classes + 1], bbox_pred [K, 4 * num_classes])."""

    def __init__(self, bbox_head: nn.Module):
        super().__init__()
        self.bbox_head = bbox_head

    def forward(self, roi_feats: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        cls_score, bbox_pred = self.bbox_head(roi_feats)
        return cls_score, bbox_pred


def dense_output_layout(model: nn.Module, kind: str, example: torch.Tensor) -> Dict[str, int]:
    """Group name -> number of tensors (levels) in the dense graph's outputs, in output order."""
    with torch.no_grad():
        if kind == SINGLE_STAGE:
            outs = model.bbox_head(model.extract_feat(example))
            names = _head_output_names(model.bbox_head, len(outs))
            return {name: len(group) for name, group in zip(names, outs)}
        feats = model.extract_feat(example)
        num_feats = model.roi_head.bbox_roi_extractor.num_inputs
        return {"feat": min(num_feats, len(feats)), "rpn_cls": len(feats), "rpn_reg": len(feats)}
