"""Components that reproduce torchvision's detection models (v1 builders) on detzoo detectors.

Each class extends a detzoo component and changes only what torchvision computes differently
(facts read from pytorch/vision ``torchvision/models/detection/*.py`` and ``ops/poolers.py``):

- ``TorchvisionBoxCoder``: ``_utils.BoxCoder`` arithmetic (deltas divided by ``weights``,
  centre ``x1 + 0.5 * w``, dw/dh clamped from above only at ``log(1000 / 16)``).
- ``TorchvisionAnchorGenerator``: ``anchor_utils.AnchorGenerator``: base anchors of explicit
  sizes, rounded to integers, centred on 0; the stride of each level is
  ``padded_image_size // feature_size`` (so P6 of an 800-high input has a stride of 61 in y).
- ``TorchvisionRPNHead``: ``rpn.RegionProposalNetwork.filter_proposals``: top-n per level on
  the objectness *logits*, sigmoid of the kept logits, ``remove_small_boxes`` (sides >= 1e-3).
- ``TorchvisionRoIExtractor``: ``MultiScaleRoIAlign``'s ``LevelMapper``:
  ``floor(4 + log2(sqrt(area) / 224) + 1e-6)``.
- ``TorchvisionBBoxHead``: ``TwoMLPHead`` + ``FastRCNNPredictor`` (background at index 0 of
  ``num_classes``, per-class boxes for every class) and ``RoIHeads.postprocess_detections``.
- ``TorchvisionMaskHead``: ``MaskRCNNHeads`` + predictor, masks pasted by ``paste_masks_in_image``.
- ``TorchvisionRoIHead``: NMS in network-input pixels, then boxes multiplied by
  ``original / resized`` (``transform.resize_boxes``), masks pasted with the rescaled boxes.
- ``TorchvisionRetinaHead`` / ``TorchvisionFCOSHead``: the heads' ``postprocess_detections``.

Labels are torchvision's: indices into its 91-entry COCO list (``TORCHVISION_COCO_CATEGORIES``,
'__background__' at 0 and 'N/A' gaps), equal to COCO category ids. Inference only: training
these configs is not supported (a clear error says so).
"""
from __future__ import annotations

import math
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from detzoo.errors import ConfigError
from detzoo.ops import batched_nms
from detzoo.structures import DetResult
from .dense_heads.fcos_head import FCOSHead
from .dense_heads.retina_head import RetinaHead
from .dense_heads.rpn_head import RPNHead
from .roi_heads.bbox_heads.convfc_bbox_head import Shared2FCBBoxHead
from .roi_heads.mask_heads.fcn_mask_head import FCNMaskHead
from .roi_heads.roi_extractors import SingleRoIExtractor
from .roi_heads.standard_roi_head import StandardRoIHead, boxes_to_rois
from .task_modules.anchors.anchor_generator import AnchorGenerator

# torchvision.models._meta._COCO_CATEGORIES: index = label = COCO category id
TORCHVISION_COCO_CATEGORIES = (
    "__background__", "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck",
    "boat", "traffic light", "fire hydrant", "N/A", "stop sign", "parking meter", "bench", "bird", "cat",
    "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "N/A", "backpack", "umbrella",
    "N/A", "N/A", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle", "N/A",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed",
    "N/A", "dining table", "N/A", "N/A", "toilet", "N/A", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "N/A", "book", "clock", "vase",
    "scissors", "teddy bear", "hair drier", "toothbrush",
)


def _inference_only(name: str):
    raise ConfigError(f"{name}: the torchvision-compatible configs are for inference only "
                      "(train torchvision models with torchvision, or use a detzoo config)")


# -- boxes ---------------------------------------------------------------------------------------
class TorchvisionBoxCoder:
    """torchvision ``BoxCoder``: ``decode(rois [N, 4], deltas [N, 4C], max_shape) -> [N, 4C]``.

    weights (wx, wy, ww, wh): (1, 1, 1, 1) for the RPN and RetinaNet, (10, 10, 5, 5) for the
    R-CNN box head. ``max_shape``: (h, w) or a tensor [N, 2] of (h, w) per roi; boxes are then
    clipped to x in [0, w], y in [0, h] (``clip_boxes_to_image``).
    """

    def __init__(self, weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
                 bbox_xform_clip: float = math.log(1000.0 / 16)):
        self.weights = tuple(float(w) for w in weights)
        self.bbox_xform_clip = bbox_xform_clip

    def encode(self, proposals: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        _inference_only("TorchvisionBoxCoder.encode")

    def decode(self, rois: torch.Tensor, deltas: torch.Tensor, max_shape=None, **_) -> torch.Tensor:
        num = deltas.shape[0]
        if num == 0:
            return deltas.new_zeros(deltas.shape)
        rois = rois.to(deltas.dtype)
        widths = rois[:, 2] - rois[:, 0]
        heights = rois[:, 3] - rois[:, 1]
        ctr_x = rois[:, 0] + 0.5 * widths
        ctr_y = rois[:, 1] + 0.5 * heights
        wx, wy, ww, wh = self.weights
        dx = deltas[:, 0::4] / wx
        dy = deltas[:, 1::4] / wy
        dw = torch.clamp(deltas[:, 2::4] / ww, max=self.bbox_xform_clip)
        dh = torch.clamp(deltas[:, 3::4] / wh, max=self.bbox_xform_clip)
        pred_ctr_x = dx * widths[:, None] + ctr_x[:, None]
        pred_ctr_y = dy * heights[:, None] + ctr_y[:, None]
        half_w = torch.tensor(0.5, dtype=deltas.dtype, device=deltas.device) * (torch.exp(dw) * widths[:, None])
        half_h = torch.tensor(0.5, dtype=deltas.dtype, device=deltas.device) * (torch.exp(dh) * heights[:, None])
        boxes = torch.stack([pred_ctr_x - half_w, pred_ctr_y - half_h, pred_ctr_x + half_w, pred_ctr_y + half_h],
                            dim=2)  # [N, C, 4]
        if max_shape is not None:
            if isinstance(max_shape, torch.Tensor):
                hw = max_shape.to(boxes.dtype).reshape(num, 1, 2)
                h, w = hw[..., 0:1], hw[..., 1:2]
                x = torch.minimum(boxes[..., 0::2].clamp(min=0), w)
                y = torch.minimum(boxes[..., 1::2].clamp(min=0), h)
            else:
                x = boxes[..., 0::2].clamp(min=0, max=max_shape[1])
                y = boxes[..., 1::2].clamp(min=0, max=max_shape[0])
            boxes = torch.stack([x, y], dim=-1).reshape(boxes.shape)
        return boxes.reshape(num, -1)


def resize_boxes_to_original(boxes: torch.Tensor, img_meta: dict) -> torch.Tensor:
    """Boxes [N, 4] in network-input pixels -> original-image pixels, as torchvision's
    ``transform.resize_boxes``: multiplied by float32 ``original / resized`` per axis."""
    resized_h, resized_w = img_meta["img_shape"][:2]
    orig_h, orig_w = img_meta["ori_shape"][:2]
    f32 = dict(dtype=torch.float32, device=boxes.device)
    ratio_h = torch.tensor(orig_h, **f32) / torch.tensor(resized_h, **f32)
    ratio_w = torch.tensor(orig_w, **f32) / torch.tensor(resized_w, **f32)
    x1, y1, x2, y2 = boxes.unbind(1)
    return torch.stack((x1 * ratio_w, y1 * ratio_h, x2 * ratio_w, y2 * ratio_h), dim=1)


def _remove_small(boxes: torch.Tensor, min_size: float) -> torch.Tensor:
    """Indices of boxes with both sides >= min_size (``box_ops.remove_small_boxes``)."""
    ws, hs = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return torch.where((ws >= min_size) & (hs >= min_size))[0]


def _nms_keep(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, iou: float,
              max_num: int) -> torch.Tensor:
    """Indices kept by class-wise NMS, by decreasing score, at most ``max_num``."""
    if boxes.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    _, keep = batched_nms(boxes, scores, labels, iou)
    return keep[:max_num]


# -- anchors -------------------------------------------------------------------------------------
class TorchvisionAnchorGenerator(AnchorGenerator):
    """torchvision ``AnchorGenerator``.

    Args:
        sizes: per level, the anchor sizes (e.g. ``((32,), (64,), ...)``; RetinaNet's
            ``(32, 40, 50)``: ``int(x * 2 ** (i / 3))``, truncated).
        aspect_ratios: per level (or one tuple for all levels), h / w ratios.
        strides: nominal stride of each level (level 0's gives the padded image size; every
            level's real stride is then ``image_size // feature_size``, as torchvision computes).
    Base anchors: ``round([-w, -h, w, h] / 2)`` with ``w = size / sqrt(r)``; ratio-major,
    size-minor; shifts ``stride * i`` (anchors centred on the cell's top-left corner).
    """

    def __init__(self, sizes: Sequence[Sequence[float]], aspect_ratios: Sequence, strides: Sequence[int]):
        if not isinstance(aspect_ratios[0], (list, tuple)):
            aspect_ratios = [aspect_ratios] * len(sizes)
        if not (len(sizes) == len(aspect_ratios) == len(strides)):
            raise ConfigError(f"TorchvisionAnchorGenerator: {len(sizes)} sizes, {len(aspect_ratios)} aspect "
                              f"ratio sets and {len(strides)} strides; give one of each per level")
        self.sizes = [tuple(float(s) for s in level) for level in sizes]
        self.aspect_ratios = [tuple(float(r) for r in level) for level in aspect_ratios]
        self.strides = [(int(s), int(s)) for s in strides]
        self.base_sizes = [int(s) for s in strides]
        self.scale_major = True
        self.center_offset = 0.0
        self.ratios = torch.tensor(self.aspect_ratios[0])
        self.scales = torch.tensor(self.sizes[0])
        self.base_anchors = [self._tv_base_anchors(s, r) for s, r in zip(self.sizes, self.aspect_ratios)]

    @staticmethod
    def _tv_base_anchors(sizes, ratios) -> torch.Tensor:
        scales = torch.as_tensor(sizes, dtype=torch.float32)
        aspect = torch.as_tensor(ratios, dtype=torch.float32)
        h_ratios = torch.sqrt(aspect)
        w_ratios = 1 / h_ratios
        ws = (w_ratios[:, None] * scales[None, :]).view(-1)
        hs = (h_ratios[:, None] * scales[None, :]).view(-1)
        return (torch.stack([-ws, -hs, ws, hs], dim=1) / 2).round()

    def level_strides(self, featmap_sizes: Sequence[Tuple[int, int]]) -> List[Tuple[int, int]]:
        """(stride_w, stride_h) per level: padded image size // feature size."""
        img_h = int(featmap_sizes[0][0]) * self.strides[0][1]
        img_w = int(featmap_sizes[0][1]) * self.strides[0][0]
        return [(img_w // int(w), img_h // int(h)) for h, w in featmap_sizes]

    def grid_anchors(self, featmap_sizes: Sequence[Tuple[int, int]], device=None) -> List[torch.Tensor]:
        anchors = []
        for base, (stride_w, stride_h), (feat_h, feat_w) in zip(self.base_anchors, self.level_strides(featmap_sizes),
                                                              featmap_sizes):
            base = base.to(device)
            shift_x = torch.arange(0, int(feat_w), dtype=torch.int32, device=device) * stride_w
            shift_y = torch.arange(0, int(feat_h), dtype=torch.int32, device=device) * stride_h
            yy, xx = torch.meshgrid(shift_y, shift_x, indexing="ij")
            shifts = torch.stack((xx.reshape(-1), yy.reshape(-1), xx.reshape(-1), yy.reshape(-1)), dim=1)
            anchors.append((shifts.view(-1, 1, 4) + base.view(1, -1, 4)).reshape(-1, 4))
        return anchors

    def single_level_grid_anchors(self, level, featmap_size, device=None, dtype=torch.float32):
        raise ConfigError("TorchvisionAnchorGenerator: strides depend on every level's size; use grid_anchors")

    def __repr__(self) -> str:
        return f"TorchvisionAnchorGenerator(sizes={self.sizes}, aspect_ratios={self.aspect_ratios})"


# -- R-CNN ---------------------------------------------------------------------------------------
class TorchvisionRPNHead(RPNHead):
    """``RPNHead`` layout (rpn_conv, rpn_cls, rpn_reg) with torchvision's proposal filtering:
    per level the ``nms_pre`` best anchors by objectness logit (not by probability: confident
    logits saturate the float32 sigmoid at 1.0 and the order among those would be arbitrary),
    decode (``TorchvisionBoxCoder``) and clip, sigmoid, keep boxes whose sides are >= min_bbox_size
    (1e-3), NMS per level, keep ``max_per_img`` by score."""

    def forward_train(self, *args, **kwargs):
        _inference_only("TorchvisionRPNHead")

    def proposals(self, cls_scores, bbox_preds, img_metas, cfg) -> List[torch.Tensor]:
        anchors = self.anchors_of(cls_scores)
        num_images = len(img_metas)
        nms_pre = cfg.get("nms_pre", 1000)
        logits_all, boxes_all, level_ids = [], [], []
        for level, (cls_score, bbox_pred, level_anchors) in enumerate(zip(cls_scores, bbox_preds, anchors)):
            logits = cls_score.permute(0, 2, 3, 1).reshape(num_images, -1)
            deltas = bbox_pred.permute(0, 2, 3, 1).reshape(num_images, -1, 4)
            top, idx = logits.topk(min(nms_pre, logits.shape[1]), dim=1)
            per_image = []
            for i, meta in enumerate(img_metas):
                per_image.append(self.bbox_coder.decode(level_anchors[idx[i]], deltas[i, idx[i]],
                                                        max_shape=meta["img_shape"][:2]))
            logits_all.append(top)
            boxes_all.append(torch.stack(per_image))
            level_ids.append(torch.full((top.shape[1],), level, dtype=torch.long, device=top.device))
        probs = torch.sigmoid(torch.cat(logits_all, dim=1))  # one [N, K] tensor, as torchvision
        boxes, ids = torch.cat(boxes_all, dim=1), torch.cat(level_ids)
        min_size = cfg.get("min_bbox_size", 1e-3)
        results = []
        for i in range(num_images):
            keep = _remove_small(boxes[i], min_size)
            img_boxes, img_scores, img_ids = boxes[i][keep], probs[i][keep], ids[keep]
            keep = _nms_keep(img_boxes, img_scores, img_ids, cfg["nms"]["iou_threshold"], cfg["max_per_img"])
            results.append(torch.cat([img_boxes[keep], img_scores[keep, None]], dim=1))
        return results


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
