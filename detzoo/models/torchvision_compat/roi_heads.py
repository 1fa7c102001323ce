"""torchvision's second stage: RoI level mapping, box and mask heads, post-processing."""
from __future__ import annotations

import math
from typing import List

import torch
import torch.nn as nn
import torch.nn.functional as F

from detzoo.structures import DetResult
from ..roi_heads.bbox_heads.convfc_bbox_head import Shared2FCBBoxHead
from ..roi_heads.mask_heads.fcn_mask_head import FCNMaskHead
from ..roi_heads.roi_extractors import SingleRoIExtractor
from ..roi_heads.standard_roi_head import StandardRoIHead, boxes_to_rois
from .common import TorchvisionBoxCoder, _inference_only, _nms_keep, _remove_small, resize_boxes_to_original


class TorchvisionRoIExtractor(SingleRoIExtractor):
    """``MultiScaleRoIAlign``: level ``floor(4 + log2(sqrt(area) / 224) + 1e-6)`` clamped to
    the levels of ``featmap_strides`` (k_min = log2 of the finest stride). Use with
    ``roi_layer=dict(output_size=7, sampling_ratio=2, aligned=False)``."""

    def map_roi_levels(self, rois: torch.Tensor) -> torch.Tensor:
        k_min = math.log2(self.featmap_strides[0])
        k_max = math.log2(self.featmap_strides[-1])
        area = (rois[:, 3] - rois[:, 1]) * (rois[:, 4] - rois[:, 2])
        s = torch.sqrt(area)
        levels = torch.floor(4 + torch.log2(s / 224) + torch.tensor(1e-6, dtype=s.dtype))
        levels = torch.clamp(levels, min=k_min, max=k_max)
        return (levels.to(torch.int64) - int(k_min)).to(torch.int64)


class TorchvisionBBoxHead(Shared2FCBBoxHead):
    """fc6/fc7 (``TwoMLPHead``) then ``cls_score`` [K, num_classes] and ``bbox_pred``
    [K, 4 * num_classes], where ``num_classes`` counts the background at index 0 (91 for COCO).

    ``predict_single`` is ``postprocess_detections``: softmax, decode every class's box with
    weights (10, 10, 5, 5), clip, drop the background column, keep score > score_thr, drop boxes
    with a side < min_bbox_size (1e-2), class-wise NMS, keep max_per_img. Boxes stay in network
    input pixels (``TorchvisionRoIHead`` rescales). Labels are indices into the 91 classes.
    """

    def __init__(self, num_classes: int = 91, in_channels: int = 256, fc_out_channels: int = 1024,
                 roi_feat_size: int = 7, bbox_coder=None):
        coder = bbox_coder if bbox_coder is not None else TorchvisionBoxCoder((10.0, 10.0, 5.0, 5.0))
        super().__init__(num_classes - 1, coder, None, None, in_channels=in_channels,
                         fc_out_channels=fc_out_channels, roi_feat_size=roi_feat_size)
        self.num_classes = num_classes
        self.fc_reg = nn.Linear(fc_out_channels, 4 * num_classes)
        nn.init.normal_(self.fc_reg.weight, std=0.001)
        nn.init.zeros_(self.fc_reg.bias)

    def get_targets(self, *args, **kwargs):
        _inference_only("TorchvisionBBoxHead")

    def predict_single(self, rois: torch.Tensor, cls_score: torch.Tensor, bbox_pred: torch.Tensor,
                       img_meta: dict, cfg: dict, rescale: bool = False) -> DetResult:
        num_classes = cls_score.shape[-1]
        boxes = self.bbox_coder.decode(rois[:, 1:], bbox_pred, max_shape=img_meta["img_shape"][:2])
        boxes = boxes.reshape(-1, num_classes, 4)
        scores = F.softmax(cls_score, -1)
        labels = torch.arange(num_classes, device=scores.device).view(1, -1).expand_as(scores)
        boxes, scores, labels = boxes[:, 1:].reshape(-1, 4), scores[:, 1:].reshape(-1), labels[:, 1:].reshape(-1)
        inds = torch.where(scores > cfg.get("score_thr", 0.05))[0]
        boxes, scores, labels = boxes[inds], scores[inds], labels[inds]
        keep = _remove_small(boxes, cfg.get("min_bbox_size", 1e-2))
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        keep = _nms_keep(boxes, scores, labels, cfg["nms"]["iou_threshold"], cfg.get("max_per_img", 100))
        result = DetResult(boxes[keep], scores[keep], labels[keep])
        if rescale:
            result = DetResult(resize_boxes_to_original(result.boxes, img_meta), result.scores, result.labels)
        return result


class TorchvisionMaskHead(FCNMaskHead):
    """``MaskRCNNHeads`` (4 x conv3x3 + ReLU) + ``MaskRCNNPredictor`` (2x2 transposed conv +
    ReLU, 1x1 logits for each of the 91 classes); masks are pasted as torchvision's
    ``paste_masks_in_image`` does (mask padded by 1 pixel, box expanded to match, truncated to
    integers, bilinear resize to the box, copied into the image)."""

    def __init__(self, num_classes: int = 91, num_convs: int = 4, roi_feat_size: int = 14,
                 in_channels: int = 256, conv_out_channels: int = 256):
        super().__init__(num_classes=num_classes, num_convs=num_convs, roi_feat_size=roi_feat_size,
                         in_channels=in_channels, conv_out_channels=conv_out_channels)

    def paste(self, mask_probs: torch.Tensor, det_boxes: torch.Tensor, img_meta: dict,
              mask_thr_binary: float = 0.5, rescale: bool = True) -> torch.Tensor:
        height, width = img_meta["ori_shape" if rescale else "img_shape"][:2]
        probs = paste_masks_torchvision(mask_probs, det_boxes[:, :4], int(height), int(width))
        return probs if mask_thr_binary < 0 else probs >= mask_thr_binary


def paste_masks_torchvision(masks: torch.Tensor, boxes: torch.Tensor, im_h: int, im_w: int,
                            padding: int = 1) -> torch.Tensor:
    """masks [N, M, M] probabilities, boxes [N, 4] in image pixels -> [N, im_h, im_w] float
    (torchvision ``roi_heads.paste_masks_in_image``; one small resize per box, as there)."""
    if masks.shape[0] == 0:
        return masks.new_zeros((0, im_h, im_w))
    size = masks.shape[-1]
    scale = float(size + 2 * padding) / size
    padded = F.pad(masks[:, None], (padding,) * 4)
    w_half = (boxes[:, 2] - boxes[:, 0]) * 0.5 * scale
    h_half = (boxes[:, 3] - boxes[:, 1]) * 0.5 * scale
    x_c = (boxes[:, 2] + boxes[:, 0]) * 0.5
    y_c = (boxes[:, 3] + boxes[:, 1]) * 0.5
    expanded = torch.stack([x_c - w_half, y_c - h_half, x_c + w_half, y_c + h_half], dim=1).to(torch.int64)
    out = masks.new_zeros((masks.shape[0], im_h, im_w))
    for i, (x0, y0, x1, y1) in enumerate(expanded.tolist()):
        w, h = max(x1 - x0 + 1, 1), max(y1 - y0 + 1, 1)
        resized = F.interpolate(padded[i:i + 1], size=(h, w), mode="bilinear", align_corners=False)[0, 0]
        xa, xb, ya, yb = max(x0, 0), min(x1 + 1, im_w), max(y0, 0), min(y1 + 1, im_h)
        if xb > xa and yb > ya:
            out[i, ya:yb, xa:xb] = resized[ya - y0:yb - y0, xa - x0:xb - x0]
    return out


class TorchvisionRoIHead(StandardRoIHead):
    """torchvision ``RoIHeads`` at test time: detections (and the RoIs of their masks) in network
    input pixels; then boxes rescaled by ``original / resized`` and masks pasted with them."""

    def forward_train(self, *args, **kwargs):
        _inference_only("TorchvisionRoIHead")

    def simple_test(self, feats, proposals, img_metas, rescale: bool = True) -> List[DetResult]:
        rois = boxes_to_rois([p[:, :4] for p in proposals])
        cls_score, bbox_pred = self.bbox_head(self.bbox_roi_extractor(feats, rois))
        counts = [p.shape[0] for p in proposals]
        results = [self.bbox_head.predict_single(r, s, d, meta, self.test_cfg, rescale=False)
                   for r, s, d, meta in zip(rois.split(counts), cls_score.split(counts), bbox_pred.split(counts),
                                            img_metas)]
        probs: list = [None] * len(results)
        if self.with_mask:
            mask_rois = boxes_to_rois([r.boxes for r in results])
            if mask_rois.shape[0] > 0:
                labels = torch.cat([r.labels for r in results])
                probs = list(self.mask_probs(feats, mask_rois, labels).split([len(r) for r in results]))
            else:
                probs = [mask_rois.new_zeros((0, 1, 1)) for _ in results]
        finished = []
        for result, prob, meta in zip(results, probs, img_metas):
            boxes = resize_boxes_to_original(result.boxes, meta) if rescale else result.boxes
            masks = None
            if prob is not None:
                masks = self.mask_head.paste(prob, boxes, meta, self.test_cfg.get("mask_thr_binary", 0.5), rescale)
            finished.append(DetResult(boxes, result.scores, result.labels, masks))
        return finished


