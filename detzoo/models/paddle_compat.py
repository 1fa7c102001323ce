"""Components that reproduce PaddleDetection's (static / 0.x, fluid ops) R-CNN test numerics.

Each class extends a detzoo component and changes only what Paddle computes differently. Facts
from PaddlePaddle ``paddle/fluid/operators/detection/`` and PaddleDetection ``static/ppdet``:

- ``PaddleRPNHead``: ``generate_proposals`` per FPN level (``generate_proposals_op.cc``): the
  top ``pre_nms_top_n`` sigmoid scores, ``BoxCoder`` decode with +1 widths and
  ``min(dw, log(1000/16))`` (``bbox_util.h``), ``ClipTiledBoxes`` to ``im_info - 1``,
  ``FilterBoxes`` (``min_size = max(min_size, 1)`` on ``(x2 - x1) / im_scale + 1``, centre
  inside ``im_info``; a level left empty yields one all-zero box of score 0), NMS with +1 IoU,
  ``post_nms_top_n`` per level; then ``collect_fpn_proposals``: the best ``post_nms_top_n`` of
  all levels (rpn_head.py ``FPNRPNHead.get_proposals``). Config keys: ``nms_pre``,
  ``max_per_level`` (default ``max_per_img``), ``max_per_img``, ``nms.iou_threshold``,
  ``min_bbox_size``. Paddle's adaptive NMS (``eta < 1``) is not implemented (configs use 1).
- ``PaddleRoIExtractor``: ``distribute_fpn_proposals``: level ``floor(log2(sqrt((w + 1) *
  (h + 1)) / refer_scale) + refer_level)`` (area 0 for an inverted box), no epsilon.
- ``PaddleShared2FCBBoxHead`` / ``PaddleBBoxHead``: bbox_head.py ``get_prediction``: RoIs
  divided by ``im_scale``, ``box_coder`` decode in original-image pixels (+1 widths, no clamp),
  ``box_clip`` to ``ori - 1``, then ``multiclass_nms`` (``paddle_multiclass_nms``).
- ``PaddleRetinaHead``: ``retinanet_detection_output`` (``retinanet_detection_output_op.cc``):
  per level the (anchor, class) pairs with sigmoid score > ``score_thr`` (> 0 on the LAST
  level), the best ``nms_pre`` of them, decoded with +1 widths (no variance, no clamp), divided
  by ``im_scale`` and clipped to ``round(im_info / im_scale) - 1``; then per-class NMS with
  +1 IoUs over all levels and the best ``max_per_img``.
- ``PaddleYOLOV3Head``: ``yolo_box`` (``yolo_box_op.h``) per level, straight into original-image
  pixels: ``cx = (x + sigmoid(tx) * s - (s - 1) / 2) * ori_w / W``, ``w = exp(tw) * anchor_w *
  ori_w / (stride * W)``, corners ``cx -+ w / 2`` (no -1), clipped (``clip_bbox``) to
  ``[0, ori - 1]``; rows with ``sigmoid(obj) < conf_thr`` score 0; class scores ``obj *
  sigmoid(cls)``; then ``multiclass_nms`` (+1 IoUs, ``nms_top_k`` per class, ``keep_top_k``).

The RoIs' image scale and sizes come from ``img_meta["im_info"]`` (set by ``PaddleResize``,
detzoo/data/transforms/paddle_transform.py); without it ``(img_shape h, w, scale_factor[0])``.
Inference only: training keeps the parent classes' (MMDetection) targets and losses.
"""
from __future__ import annotations

import math
from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F

from detzoo.errors import ConfigError
from detzoo.ops import batched_nms
from detzoo.structures import DetResult
from .dense_heads.retina_head import RetinaHead
from .dense_heads.yolo_head import YOLOV3Head
from .dense_heads.rpn_head import RPNHead
from .roi_heads.bbox_heads.convfc_bbox_head import BBoxHead, Shared2FCBBoxHead
from .roi_heads.roi_extractors import SingleRoIExtractor


def paddle_im_info(img_meta: dict) -> Tuple[float, float, float]:
    """(height, width, im_scale) of Paddle's ``im_info`` (float32 values, as Python floats)."""
    info = img_meta.get("im_info")
    if info is not None:
        info = torch.as_tensor(info, dtype=torch.float32).reshape(-1)
        return float(info[0]), float(info[1]), float(info[2])
    scale = torch.as_tensor(img_meta["scale_factor"], dtype=torch.float32).reshape(-1)
    return float(img_meta["img_shape"][0]), float(img_meta["img_shape"][1]), float(scale[0])


def paddle_multiclass_nms(boxes: torch.Tensor, scores: torch.Tensor, score_thr: float, iou_threshold: float,
                          nms_top_k: int = -1, keep_top_k: int = -1) -> Tuple[torch.Tensor, torch.Tensor]:
    """fluid ``multiclass_nms`` (``multiclass_nms_op.cc``, ``normalized=False``) on one image.

    Args:
        boxes: ``[N, C, 4]`` per-class boxes (or ``[N, 1, 4]`` shared by all classes).
        scores: ``[N, C]`` foreground scores (Paddle's background column already removed).
        score_thr: a class candidate needs ``score > score_thr``.
        iou_threshold: per-class NMS with +1 IoUs (suppress when IoU > threshold).
        nms_top_k: per class, only the ``nms_top_k`` best candidates enter NMS (-1: all).
        keep_top_k: at most this many detections per image over all classes (-1: all).

    Returns ``(dets [K, 5], labels [K])`` by descending score; ties go to the lower class, then
    the lower row, which is the order of Paddle's final stable sort. (Paddle lists the kept set
    class by class; the set is the same.)
    """
    num_rows, num_classes = scores.shape
    boxes = boxes.expand(num_rows, num_classes, 4)
    # class-major flat order, so "lower flat index first" on ties means (class, row) order
    flat_scores = scores.t().reshape(-1)
    flat_boxes = boxes.transpose(0, 1).reshape(-1, 4)
    labels = torch.arange(num_classes, device=scores.device).repeat_interleave(num_rows)
    cand = (flat_scores > score_thr).nonzero().squeeze(1)
    if nms_top_k > -1 and cand.numel() > 0:
        order = torch.sort(flat_scores[cand], descending=True, stable=True).indices
        order = order[torch.sort(labels[cand][order], stable=True).indices]  # class-major, best first
        cls = labels[cand][order]
        starts = torch.searchsorted(cls, cls, right=False)
        rank = torch.arange(cls.numel(), device=cls.device) - starts
        cand = cand[order[rank < nms_top_k]].sort().values
    dets, keep = batched_nms(flat_boxes[cand], flat_scores[cand], labels[cand], iou_threshold, offset=1.0)
    if keep_top_k > -1:
        dets, keep = dets[:keep_top_k], keep[:keep_top_k]
    return dets, labels[cand][keep]


class PaddleRPNHead(RPNHead):
    """``RPNHead`` whose proposals follow fluid ``generate_proposals`` + ``collect_fpn_proposals``
    (module docstring). Use it with ``LegacyAnchorGenerator`` and ``LegacyDeltaXYWHBBoxCoder``
    (``dwh_clamp="upper"``); the coder's decode then clips to ``im_info - 1``."""

    def proposals(self, cls_scores: List[torch.Tensor], bbox_preds: List[torch.Tensor], img_metas: List[dict],
                  cfg: dict) -> List[torch.Tensor]:
        if cfg.get("eta", 1.0) < 1.0:
            raise ConfigError("PaddleRPNHead: adaptive NMS (eta < 1) is not implemented")
        if not self.use_sigmoid_cls:
            raise ConfigError("PaddleRPNHead: Paddle's R-CNN configs score anchors with a sigmoid")
        anchors = self.anchors_of(cls_scores)
        nms_pre = cfg.get("nms_pre", -1)
        results = []
        for i, meta in enumerate(img_metas):
            im_h, im_w, im_scale = paddle_im_info(meta)
            boxes, scores, ids = [], [], []
            for level, (cls_score, bbox_pred, level_anchors) in enumerate(zip(cls_scores, bbox_preds, anchors)):
                level_scores = cls_score[i].permute(1, 2, 0).reshape(-1).sigmoid()
                deltas = bbox_pred[i].permute(1, 2, 0).reshape(-1, 4)
                if 0 < nms_pre < level_scores.numel():
                    level_scores, keep = level_scores.topk(nms_pre)
                    deltas, level_anchors = deltas[keep], level_anchors[keep]
                boxes.append(self.bbox_coder.decode(level_anchors, deltas, max_shape=(im_h, im_w)))
                scores.append(level_scores)
                ids.append(torch.full_like(level_scores, level, dtype=torch.long))
            results.append(self._paddle_select(torch.cat(boxes), torch.cat(scores), torch.cat(ids),
                                               len(cls_scores), (im_h, im_w, im_scale), cfg))
        return results

    @staticmethod
    def _paddle_select(boxes: torch.Tensor, scores: torch.Tensor, ids: torch.Tensor, num_levels: int,
                       im_info: Tuple[float, float, float], cfg: dict) -> torch.Tensor:
        """FilterBoxes, per-level NMS and top-n, then the best ``max_per_img`` -> [K, 5]."""
        im_h, im_w, im_scale = im_info
        min_size = max(float(cfg.get("min_bbox_size", 0.0)), 1.0)
        x1, y1, x2, y2 = boxes.unbind(-1)
        ctr_x = x1 + (x2 - x1 + 1) / 2
        ctr_y = y1 + (y2 - y1 + 1) / 2
        scale = torch.tensor(im_scale, dtype=boxes.dtype, device=boxes.device)
        valid = (((x2 - x1) / scale + 1 >= min_size) & ((y2 - y1) / scale + 1 >= min_size)
                 & (ctr_x <= im_w) & (ctr_y <= im_h))
        boxes, scores, ids = boxes[valid], scores[valid], ids[valid]
        dets, keep = batched_nms(boxes, scores, ids, cfg["nms"]["iou_threshold"], offset=1.0)
        kept_ids = ids[keep]
        per_level = cfg.get("max_per_level", cfg["max_per_img"])
        rank = torch.zeros_like(kept_ids)
        for level in range(num_levels):  # rank of each kept box within its level (dets are sorted)
            mask = kept_ids == level
            rank[mask] = torch.arange(int(mask.sum()), device=rank.device)
        dets = dets[rank < per_level]
        # generate_proposals returns one zero box (score 0) for a level whose boxes were all filtered
        empty = num_levels - int(torch.unique(ids).numel())
        if empty:
            dets = torch.cat([dets, dets.new_zeros((empty, 5))])
        order = torch.sort(dets[:, 4], descending=True, stable=True).indices
        return dets[order[: cfg["max_per_img"]]]


class PaddleRoIExtractor(SingleRoIExtractor):
    """``SingleRoIExtractor`` with fluid ``distribute_fpn_proposals`` level assignment
    (``distribute_fpn_proposals_op.h``): ``refer_level`` is the level (log2 of the stride) that
    RoIs of ``refer_scale`` pixels go to; the first featmap stride gives ``min_level``."""

    def __init__(self, roi_layer, out_channels: int, featmap_strides: Sequence[int], refer_level: int = 4,
                 refer_scale: int = 224, **kwargs):
        super().__init__(roi_layer, out_channels, featmap_strides, **kwargs)
        self.refer_level = refer_level
        self.refer_scale = refer_scale
        self.min_level = int(round(math.log2(featmap_strides[0])))

    def map_roi_levels(self, rois: torch.Tensor) -> torch.Tensor:
        width, height = rois[:, 3] - rois[:, 1], rois[:, 4] - rois[:, 2]
        area = ((width + 1) * (height + 1)).where((width >= 0) & (height >= 0), torch.zeros_like(width))
        level = torch.floor(torch.log2(torch.sqrt(area) / self.refer_scale) + self.refer_level)
        level = level.clamp(min=self.min_level, max=self.min_level + self.num_inputs - 1)
        return (level - self.min_level).long()


class _PaddlePrediction:
    """``predict_single`` of PaddleDetection's ``BBoxHead.get_prediction`` (module docstring).
    test_cfg.rcnn: ``score_thr``, ``nms.iou_threshold``, ``max_per_img`` (keep_top_k) and
    optionally ``nms_top_k`` (default -1). The bbox coder must be a ``LegacyDeltaXYWHBBoxCoder``
    with ``dwh_clamp="none"`` and ``clip_border=True``."""

    def predict_single(self, rois: torch.Tensor, cls_score: torch.Tensor, bbox_pred: torch.Tensor,
                       img_meta: dict, cfg: dict, rescale: bool = True) -> DetResult:
        scores = F.softmax(cls_score, dim=-1)
        _, _, im_scale = paddle_im_info(img_meta)
        scale = torch.tensor(im_scale, dtype=rois.dtype, device=rois.device)
        ori_h, ori_w = img_meta["ori_shape"][:2]
        boxes = self.bbox_coder.decode(rois[:, 1:] / scale, bbox_pred, max_shape=(ori_h, ori_w))
        boxes = boxes.reshape(boxes.shape[0], -1, 4)
        dets, labels = paddle_multiclass_nms(boxes, scores[:, :-1], cfg["score_thr"], cfg["nms"]["iou_threshold"],
                                             cfg.get("nms_top_k", -1), cfg.get("max_per_img", -1))
        det_boxes = dets[:, :4] if rescale else dets[:, :4] * scale
        return DetResult(det_boxes, dets[:, 4], labels)


class PaddleShared2FCBBoxHead(_PaddlePrediction, Shared2FCBBoxHead):
    """Paddle's ``TwoFCHead`` box head (FPN rows) with Paddle's test-time box arithmetic."""


class PaddleBBoxHead(_PaddlePrediction, BBoxHead):
    """Paddle's ``ResNetC5`` box predictor (C4 rows) with Paddle's test-time box arithmetic."""


class PaddleRetinaHead(RetinaHead):
    """``RetinaHead`` with fluid ``retinanet_detection_output`` post-processing (module
    docstring). test_cfg: ``score_thr``, ``nms_pre`` (Paddle ``nms_top_k`` per level),
    ``nms.iou_threshold``, ``max_per_img`` (``keep_top_k``). Use it with a
    ``LegacyAnchorGenerator`` with Paddle's ratio order (``[1.0, 2.0, 0.5]``)."""

    def predict_single(self, cls_scores, bbox_preds, score_factors, priors, img_meta, rescale=True) -> DetResult:
        cfg = self.test_cfg
        im_h, im_w, im_scale = paddle_im_info(img_meta)
        scale = torch.tensor(im_scale, dtype=torch.float32, device=cls_scores[0].device)
        # C round (half away from zero) of the original size, as DeltaScoreToPrediction does
        ori_h = math.floor(float(scale.new_tensor(im_h) / scale) + 0.5)
        ori_w = math.floor(float(scale.new_tensor(im_w) / scale) + 0.5)
        upper = scale.new_tensor([ori_w - 1, ori_h - 1, ori_w - 1, ori_h - 1])
        boxes, scores, labels = [], [], []
        last = len(cls_scores) - 1
        for level, (cls_score, bbox_pred, anchors) in enumerate(zip(cls_scores, bbox_preds, priors)):
            probs = cls_score.permute(1, 2, 0).reshape(-1).sigmoid()  # flat index anchor * C + class
            threshold = cfg.get("score_thr", 0.05) if level < last else 0.0
            cand = (probs > threshold).nonzero().squeeze(1)
            order = torch.sort(probs[cand], descending=True, stable=True).indices
            nms_pre = cfg.get("nms_pre", -1)
            if nms_pre > -1:
                order = order[:nms_pre]
            cand = cand[order]
            rows = torch.div(cand, self.cls_out_channels, rounding_mode="floor")
            deltas = bbox_pred.permute(1, 2, 0).reshape(-1, 4)[rows]
            anchors = anchors[rows]
            wh = anchors[:, 2:] - anchors[:, :2] + 1
            ctr = anchors[:, :2] + wh / 2
            pred_ctr = deltas[:, :2] * wh + ctr
            pred_wh = torch.exp(deltas[:, 2:]) * wh
            level_boxes = torch.cat([pred_ctr - pred_wh / 2, pred_ctr + pred_wh / 2 - 1], dim=1) / scale
            boxes.append(torch.minimum(level_boxes, upper).clamp(min=0))
            scores.append(probs[cand])
            labels.append(cand % self.cls_out_channels)
        boxes, scores, labels = torch.cat(boxes), torch.cat(scores), torch.cat(labels)
        # class-major (stable), so ties resolve in Paddle's (class, level, rank) order
        by_class = torch.sort(labels, stable=True).indices
        boxes, scores, labels = boxes[by_class], scores[by_class], labels[by_class]
        dets, keep = batched_nms(boxes, scores, labels, cfg["nms"]["iou_threshold"], offset=1.0)
        max_num = cfg.get("max_per_img", -1)
        if max_num > -1:
            dets, keep = dets[:max_num], keep[:max_num]
        det_boxes = dets[:, :4] if rescale else dets[:, :4] * scale
        return DetResult(det_boxes, dets[:, 4], labels[keep])


class PaddleYOLOV3Head(YOLOV3Head):
    """``YOLOV3Head`` with PaddleDetection's ``yolo_box`` + ``multiclass_nms`` test path (module
    docstring; static/ppdet/modeling/anchor_heads/yolo_head.py ``get_prediction``).

    test_cfg: ``conf_thr`` (yolo_box ``conf_thresh``; Paddle passes the NMS score threshold,
    0.01), ``score_thr`` (0.01), ``nms_top_k`` (1000, per class), ``nms.iou_threshold`` (0.45),
    ``max_per_img`` (keep_top_k 100), optional ``scale_x_y`` (1.0) and ``clip_bbox`` (True).
    Paddle's ``im_size`` is the original image: ``img_meta["ori_shape"]``.
    """

    def predict_by_feat(self, pred_maps: List[torch.Tensor], img_metas: List[dict],
                        rescale: bool = True) -> List[DetResult]:
        if self.test_cfg is None:
            raise ConfigError("PaddleYOLOV3Head.predict needs a test_cfg (conf_thr, score_thr, nms_top_k, nms, "
                              "max_per_img)")
        cfg = self.test_cfg
        scale_xy = float(cfg.get("scale_x_y", 1.0))
        bias = -0.5 * (scale_xy - 1.0)
        results = []
        for i, meta in enumerate(img_metas):
            ori_h, ori_w = int(meta["ori_shape"][0]), int(meta["ori_shape"][1])
            boxes, scores = [], []
            for level, pred_map in enumerate(pred_maps):
                num_anchors = len(self.prior_generator.base_sizes[level])
                _, feat_h, feat_w = pred_map[i].shape
                pred = pred_map[i].float().reshape(num_anchors, self.num_attrib, feat_h, feat_w)
                stride = int(self.featmap_strides[level])
                anchor_wh = pred.new_tensor([[float(round(w)), float(round(h))]
                                             for w, h in self.prior_generator.base_sizes[level]])
                grid_x = torch.arange(feat_w, device=pred.device, dtype=pred.dtype).view(1, 1, -1)
                grid_y = torch.arange(feat_h, device=pred.device, dtype=pred.dtype).view(1, -1, 1)
                # Paddle's float order: (x + sigmoid * s + b) * img_w / grid_w
                ctr_x = (grid_x + pred[:, 0].sigmoid() * scale_xy + bias) * ori_w / feat_w
                ctr_y = (grid_y + pred[:, 1].sigmoid() * scale_xy + bias) * ori_h / feat_h
                width = torch.exp(pred[:, 2]) * anchor_wh[:, 0].view(-1, 1, 1) * ori_w / (stride * feat_w)
                height = torch.exp(pred[:, 3]) * anchor_wh[:, 1].view(-1, 1, 1) * ori_h / (stride * feat_h)
                x1, y1 = ctr_x - width / 2, ctr_y - height / 2
                x2, y2 = ctr_x + width / 2, ctr_y + height / 2
                if cfg.get("clip_bbox", True):  # CalcDetectionBox: [0, img - 1]
                    x1, y1 = x1.clamp(min=0), y1.clamp(min=0)
                    x2, y2 = x2.clamp(max=ori_w - 1.0), y2.clamp(max=ori_h - 1.0)
                level_boxes = torch.stack([x1, y1, x2, y2], dim=-1)
                conf = pred[:, 4].sigmoid()
                level_scores = conf.unsqueeze(1) * pred[:, 5:].sigmoid()  # [A, C, H, W]
                level_scores = level_scores * (conf >= cfg.get("conf_thr", 0.01)).unsqueeze(1)
                # Paddle's row order within a level: anchor, then y, then x
                boxes.append(level_boxes.reshape(-1, 4))
                scores.append(level_scores.permute(0, 2, 3, 1).reshape(-1, self.num_classes))
            dets, labels = paddle_multiclass_nms(torch.cat(boxes)[:, None], torch.cat(scores),
                                                 cfg.get("score_thr", 0.01), cfg["nms"]["iou_threshold"],
                                                 cfg.get("nms_top_k", -1), cfg.get("max_per_img", -1))
            det_boxes = dets[:, :4]
            if not rescale:
                factor = torch.as_tensor(meta["scale_factor"], dtype=det_boxes.dtype).reshape(-1)[:2]
                det_boxes = det_boxes * factor.to(det_boxes.device).repeat(2)
            results.append(DetResult(det_boxes, dets[:, 4], labels))
        return results
