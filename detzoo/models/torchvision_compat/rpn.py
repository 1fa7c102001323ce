"""torchvision's anchors (``anchor_utils.AnchorGenerator``) and RPN proposal selection."""
from __future__ import annotations

from typing import List, Sequence, Tuple

import torch

from detzoo.errors import ConfigError
from ..dense_heads.rpn_head import RPNHead
from ..task_modules.anchors.anchor_generator import AnchorGenerator
from .common import _inference_only, _nms_keep, _remove_small


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


