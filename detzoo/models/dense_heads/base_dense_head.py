"""Test-time post-processing shared by every one-stage head (MMDetection 3.x ``BaseDenseHead``):
per level, keep the (location, class) pairs above ``score_thr``, the ``nms_pre`` best of them,
decode their boxes; then over all levels rescale, multiply by score factors (FCOS/ATSS
centre-ness), drop small boxes, class-wise NMS and keep ``max_per_img``.

A head plugs in through four things: ``cls_out_channels`` and ``use_sigmoid_cls``; ``priors_of``
(per-level anchors [H*W*A, 4] or points [H*W, 2+]); ``decode(priors, bbox_pred, max_shape)``;
and ``bbox_pred_channels`` (4 for deltas/distances, more for GFL's distributions).
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from detzoo.ops import batched_nms, rescale_boxes
from detzoo.structures import DetResult


def filter_scores_and_topk(scores: torch.Tensor, score_thr: float,
                           topk: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """scores [N, C] -> the ``topk`` best (score > score_thr) pairs: (scores [K], labels [K],
    row indices [K]), by descending score (MMDetection ``filter_scores_and_topk``).

    As in the reference, the pairs kept are ``sorted[:min(topk, num_valid)]``: a negative
    ``topk`` (``nms_pre=-1``) therefore drops the last ``|topk|`` pairs rather than keeping
    all (mmdet/models/utils/misc.py); detections must match, so the quirk is kept.
    """
    valid = scores > score_thr
    kept_scores = scores[valid]
    pairs = valid.nonzero()
    num_topk = min(topk, kept_scores.shape[0])
    if 0 <= num_topk < kept_scores.shape[0] // 4:
        # a partial selection is much cheaper than sorting millions of pairs (RetinaNet's
        # 9 anchors x 80 classes per location); it returns the same top pairs, sorted
        kept_scores, order = kept_scores.topk(num_topk, sorted=True)
    else:
        kept_scores, order = kept_scores.sort(descending=True)
        kept_scores, order = kept_scores[:num_topk], order[:num_topk]
    rows, labels = pairs[order].unbind(dim=1)
    return kept_scores, labels, rows


class BaseDenseHead(nn.Module):
    """Mixin-style base: subclasses are ``nn.Module`` heads whose ``forward(feats)`` returns
    ``(cls_scores, bbox_preds)`` or ``(cls_scores, bbox_preds, score_factors)``, each a per-level
    list of [B, C_l, H, W] maps; ``test_cfg`` holds nms_pre, score_thr, nms (``iou_threshold``,
    optionally ``class_agnostic``), max_per_img and optionally min_bbox_size."""

    cls_out_channels: int
    use_sigmoid_cls: bool = True
    bbox_pred_channels: int = 4
    test_cfg: Optional[dict]

    def priors_of(self, featmap_sizes: Sequence[Tuple[int, int]], device) -> List[torch.Tensor]:
        raise NotImplementedError

    def decode(self, priors: torch.Tensor, bbox_pred: torch.Tensor, max_shape) -> torch.Tensor:
        return self.bbox_coder.decode(priors, bbox_pred, max_shape=max_shape)

    def predict(self, feats: Sequence[torch.Tensor], img_metas: List[dict], rescale: bool = True) -> List[DetResult]:
        outs = self(feats)
        score_factors = outs[2] if len(outs) > 2 else None
        return self.predict_by_feat(outs[0], outs[1], img_metas, score_factors, rescale)

    def predict_by_feat(self, cls_scores: List[torch.Tensor], bbox_preds: List[torch.Tensor], img_metas: List[dict],
                        score_factors: Optional[List[torch.Tensor]] = None, rescale: bool = True) -> List[DetResult]:
        featmap_sizes = [tuple(c.shape[-2:]) for c in cls_scores]
        priors = self.priors_of(featmap_sizes, cls_scores[0].device)
        results = []
        for i, meta in enumerate(img_metas):
            factors = None if score_factors is None else [s[i] for s in score_factors]
            results.append(self.predict_single([c[i] for c in cls_scores], [b[i] for b in bbox_preds], factors,
                                               priors, meta, rescale))
        return results

    def predict_single(self, cls_scores: List[torch.Tensor], bbox_preds: List[torch.Tensor],
                       score_factors: Optional[List[torch.Tensor]], priors: List[torch.Tensor], img_meta: dict,
                       rescale: bool = True) -> DetResult:
        """One image: per-level maps [C, H, W] -> detections (original-image pixels if rescale)."""
        cfg = self.test_cfg
        nms_pre, score_thr = cfg.get("nms_pre", -1), cfg.get("score_thr", 0.0)
        boxes, scores, labels, factors = [], [], [], []
        for level, (cls_score, bbox_pred, level_priors) in enumerate(zip(cls_scores, bbox_preds, priors)):
            logits = cls_score.permute(1, 2, 0).reshape(-1, self.cls_out_channels)
            probs = logits.sigmoid() if self.use_sigmoid_cls else logits.softmax(-1)[:, :-1]
            level_scores, level_labels, rows = filter_scores_and_topk(probs, score_thr, nms_pre)
            pred = bbox_pred.permute(1, 2, 0).reshape(-1, self.bbox_pred_channels)[rows]
            if rows.numel() == 0:  # nothing above score_thr on this level (the coders need rows)
                boxes.append(pred.new_zeros((0, 4)))
            else:
                boxes.append(self.decode(level_priors[rows], pred, img_meta["img_shape"]))
            scores.append(level_scores)
            labels.append(level_labels)
            if score_factors is not None:
                factors.append(score_factors[level].permute(1, 2, 0).reshape(-1)[rows].sigmoid())
        boxes, scores, labels = torch.cat(boxes), torch.cat(scores), torch.cat(labels)
        return self.bbox_post_process(boxes, scores, labels, torch.cat(factors) if factors else None,
                                      img_meta, rescale)

    def bbox_post_process(self, boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor,
                          score_factors: Optional[torch.Tensor], img_meta: dict, rescale: bool) -> DetResult:
        """Rescale, apply score factors, drop small boxes, class-wise NMS, keep max_per_img
        (MMDetection ``BaseDenseHead._bbox_post_process``)."""
        cfg = self.test_cfg
        if rescale and boxes.numel() > 0:
            # divides by (w, h, w, h) as the R-CNN heads do; mmdet 3.x multiplies by 1 / s,
            # which can differ in the last float32 bit
            boxes = rescale_boxes(boxes, img_meta["scale_factor"])
        if score_factors is not None:
            scores = scores * score_factors
        min_size = cfg.get("min_bbox_size", -1)
        if min_size >= 0:
            keep = ((boxes[:, 2] - boxes[:, 0]) > min_size) & ((boxes[:, 3] - boxes[:, 1]) > min_size)
            if not bool(keep.all()):
                boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        if boxes.numel() == 0:
            return DetResult(boxes.reshape(0, 4), scores, labels)
        nms_cfg = cfg["nms"]
        dets, keep = batched_nms(boxes, scores, labels, nms_cfg["iou_threshold"],
                                 class_agnostic=nms_cfg.get("class_agnostic", False))
        max_num = cfg.get("max_per_img")
        if max_num is not None:  # sliced as the reference does: -1 would drop the last one
            dets, keep = dets[:max_num], keep[:max_num]
        return DetResult(dets[:, :4], dets[:, 4], labels[keep])
