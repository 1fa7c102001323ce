"""torchvision's RetinaNet and FCOS post-processing."""
from __future__ import annotations

from typing import List

import torch

from detzoo.structures import DetResult
from ..dense_heads.fcos_head import FCOSHead
from ..dense_heads.retina_head import RetinaHead
from .common import _inference_only, _nms_keep, resize_boxes_to_original
from .rpn import TorchvisionAnchorGenerator


# -- one-stage heads -----------------------------------------------------------------------------
def _level_topk(scores: torch.Tensor, score_thr: float, topk: int):
    """Flat per-level scores [P * C] -> (kept scores, flat indices): > score_thr, best topk."""
    keep = scores > score_thr
    kept = scores[keep]
    idxs = torch.where(keep)[0]
    kept, order = kept.topk(min(topk, idxs.shape[0]))
    return kept, idxs[order]


class TorchvisionRetinaHead(RetinaHead):
    """RetinaNet head (``cls_logits``/``bbox_reg`` after 4 conv+ReLU towers) with torchvision's
    ``postprocess_detections``: per level sigmoid scores > score_thr, the topk (``nms_pre``, 1000)
    best (anchor, class) pairs, decode (weights 1), clip; class-wise NMS over all levels in network
    input pixels, keep max_per_img (300), then rescale by ``original / resized``."""

    def loss(self, *args, **kwargs):
        _inference_only("TorchvisionRetinaHead")

    def predict_single(self, cls_scores, bbox_preds, score_factors, priors, img_meta, rescale=True) -> DetResult:
        cfg = self.test_cfg
        boxes, scores, labels = [], [], []
        for cls_score, bbox_pred, anchors in zip(cls_scores, bbox_preds, priors):
            num_classes = self.cls_out_channels
            logits = cls_score.permute(1, 2, 0).reshape(-1)
            level_scores, idxs = _level_topk(torch.sigmoid(logits), cfg.get("score_thr", 0.05),
                                             cfg.get("nms_pre", 1000))
            anchor_idxs = torch.div(idxs, num_classes, rounding_mode="floor")
            deltas = bbox_pred.permute(1, 2, 0).reshape(-1, 4)[anchor_idxs]
            boxes.append(self.bbox_coder.decode(anchors[anchor_idxs], deltas, max_shape=img_meta["img_shape"][:2]))
            scores.append(level_scores)
            labels.append(idxs % num_classes)
        return _finish_dense(torch.cat(boxes), torch.cat(scores), torch.cat(labels), cfg, img_meta, rescale)


def _finish_dense(boxes, scores, labels, cfg, img_meta, rescale) -> DetResult:
    keep = _nms_keep(boxes, scores, labels, cfg["nms"]["iou_threshold"], cfg.get("max_per_img", 100))
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    if rescale:
        boxes = resize_boxes_to_original(boxes, img_meta)
    return DetResult(boxes, scores, labels)


class TorchvisionFCOSHead(FCOSHead):
    """torchvision FCOS head: towers of conv3x3 (with bias) + GroupNorm(32) + ReLU; ``conv_reg``
    through a ReLU times the anchor size (the nominal stride), centre-ness on the regression
    tower; points at ``stride * i`` (torchvision's anchors of size = stride, centred on the cell's
    top-left corner, strides from the padded image size as ``TorchvisionAnchorGenerator``).
    ``predict_single`` is FCOS ``postprocess_detections``: score ``sqrt(sigmoid(cls) *
    sigmoid(ctr))`` > score_thr (0.2), topk (``nms_pre``, 1000) per level, decode, clip;
    class-wise NMS (0.6), keep max_per_img (100), rescale by ``original / resized``.
    ``scales.i.scale`` exist for detzoo's layout and stay 1.0."""

    def __init__(self, num_classes: int = 91, in_channels: int = 256, strides=(8, 16, 32, 64, 128), **kwargs):
        kwargs.setdefault("norm_cfg", dict(type="GN", num_groups=32, requires_grad=True))
        super().__init__(num_classes, in_channels, strides=strides, norm_on_bbox=True, centerness_on_reg=True,
                         conv_bias=True, **kwargs)
        self.anchor_like = TorchvisionAnchorGenerator([(s,) for s in self.strides], (1.0,), self.strides)

    def loss(self, *args, **kwargs):
        _inference_only("TorchvisionFCOSHead")

    def priors_of(self, featmap_sizes, device) -> List[torch.Tensor]:
        """Per level [H * W, 2] points: the centres of torchvision's anchors."""
        anchors = self.anchor_like.grid_anchors(featmap_sizes, device=device)
        return [0.5 * (a[:, :2] + a[:, 2:]) for a in anchors]

    def predict_single(self, cls_scores, bbox_preds, score_factors, priors, img_meta, rescale=True) -> DetResult:
        cfg = self.test_cfg
        boxes, scores, labels = [], [], []
        for cls_score, bbox_pred, ctr, points in zip(cls_scores, bbox_preds, score_factors, priors):
            num_classes = cls_score.shape[0]
            logits = cls_score.permute(1, 2, 0).reshape(-1, num_classes)
            ctr = ctr.permute(1, 2, 0).reshape(-1, 1)
            level_scores, idxs = _level_topk(torch.sqrt(torch.sigmoid(logits) * torch.sigmoid(ctr)).flatten(),
                                             cfg.get("score_thr", 0.2), cfg.get("nms_pre", 1000))
            point_idxs = torch.div(idxs, num_classes, rounding_mode="floor")
            dist = bbox_pred.permute(1, 2, 0).reshape(-1, 4)[point_idxs]  # already times the anchor size
            pts = points[point_idxs]
            level_boxes = torch.stack([pts[:, 0] - dist[:, 0], pts[:, 1] - dist[:, 1],
                                       pts[:, 0] + dist[:, 2], pts[:, 1] + dist[:, 3]], dim=1)
            h, w = img_meta["img_shape"][:2]
            x = level_boxes[:, 0::2].clamp(min=0, max=w)
            y = level_boxes[:, 1::2].clamp(min=0, max=h)
            boxes.append(torch.stack([x, y], dim=-1).reshape(-1, 4))
            scores.append(level_scores)
            labels.append(idxs % num_classes)
        return _finish_dense(torch.cat(boxes), torch.cat(scores), torch.cat(labels), cfg, img_meta, rescale)
