"""Region proposal network head (MMDetection's ``RPNHead`` layout: rpn_conv/rpn_cls/rpn_reg)."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from detzoo.ops import batched_nms
from detzoo.ops.nms import _batched_nms_first
from .anchor_head import AnchorHead


class RPNHead(AnchorHead):
    """A shared 3x3 conv then 1x1 objectness (A channels, sigmoid) and deltas (4A) per level.

    Proposals (``test_cfg`` / the detector's ``rpn_proposal`` train config): per level the top
    ``nms_pre`` scores, decode and clip to the image, drop boxes with w or h <= min_bbox_size,
    NMS within each level (level ids as classes), keep ``max_per_img``. See fidelity.md B.8.
    """

    def __init__(self, in_channels: int, anchor_generator, bbox_coder, loss_cls, loss_bbox,
                 feat_channels: int = 256, num_classes: int = 1, **kwargs):
        super().__init__(num_classes, in_channels, anchor_generator, bbox_coder, loss_cls, loss_bbox,
                         feat_channels=feat_channels, **kwargs)
        self.proposal_cfg: Optional[dict] = None

    def _init_layers(self) -> None:
        self.rpn_conv = nn.Conv2d(self.in_channels, self.feat_channels, 3, padding=1)
        self.rpn_cls = nn.Conv2d(self.feat_channels, self.num_base_anchors * self.cls_out_channels, 1)
        self.rpn_reg = nn.Conv2d(self.feat_channels, self.num_base_anchors * 4, 1)

    def forward_single(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        x = F.relu(self.rpn_conv(x), inplace=True)
        return self.rpn_cls(x), self.rpn_reg(x)

    def forward_train(self, feats: Sequence[torch.Tensor], img_metas: List[dict], gt_bboxes: List[torch.Tensor],
                      gt_bboxes_ignore: Optional[List[torch.Tensor]] = None
                      ) -> Tuple[Dict[str, torch.Tensor], List[torch.Tensor]]:
        """Losses (loss_rpn_cls, loss_rpn_bbox) and the proposals [K_i, 5] the RoI head trains on."""
        cls_scores, bbox_preds = self(feats)
        losses = self.loss(cls_scores, bbox_preds, gt_bboxes, None, img_metas, gt_bboxes_ignore)
        proposals = self.proposals([c.detach() for c in cls_scores], [b.detach() for b in bbox_preds],
                                   img_metas, self.proposal_cfg or self.test_cfg)
        return {"loss_rpn_cls": losses["loss_cls"], "loss_rpn_bbox": losses["loss_bbox"]}, proposals

    def simple_test_rpn(self, feats: Sequence[torch.Tensor], img_metas: List[dict]) -> List[torch.Tensor]:
        cls_scores, bbox_preds = self(feats)
        return self.proposals(cls_scores, bbox_preds, img_metas, self.test_cfg)

    def proposals(self, cls_scores: List[torch.Tensor], bbox_preds: List[torch.Tensor], img_metas: List[dict],
                  cfg: dict) -> List[torch.Tensor]:
        """Per image a [K, 5] tensor (x1, y1, x2, y2, score) sorted by score, in input pixels.

        Scoring, per-level top-k and decoding run on the whole batch at once (the top-k of each
        image's row is what a per-image top-k gives); the size filter and NMS run per image.
        """
        anchors = self.anchors_of(cls_scores)
        num_images = len(img_metas)
        nms_pre = cfg.get("nms_pre", -1)
        scores_all, deltas_all, anchors_all, level_ids = [], [], [], []
        for level, (cls_score, bbox_pred, level_anchors) in enumerate(zip(cls_scores, bbox_preds, anchors)):
            cls_score = cls_score.permute(0, 2, 3, 1)
            if self.use_sigmoid_cls:
                # row by row: the vectorised sigmoid rounds a few elements differently when the
                # rows are one flat input, and the scores should not depend on the batch
                scores = torch.stack([row.sigmoid() for row in cls_score.reshape(num_images, -1)])
            else:  # two channels per anchor; foreground is channel 0 (fidelity.md A, class history)
                scores = torch.stack([row.softmax(dim=1)[:, 0] for row in cls_score.reshape(num_images, -1, 2)])
            deltas = bbox_pred.permute(0, 2, 3, 1).reshape(num_images, -1, 4)
            level_anchors = level_anchors.expand(num_images, -1, -1)
            if 0 < nms_pre < scores.shape[1]:
                scores, keep = scores.topk(nms_pre, dim=1)
                keep4 = keep.unsqueeze(-1).expand(-1, -1, 4)
                deltas, level_anchors = deltas.gather(1, keep4), level_anchors.gather(1, keep4)
            scores_all.append(scores)
            deltas_all.append(deltas)
            anchors_all.append(level_anchors)
            level_ids.append(torch.full((scores.shape[1],), level, dtype=torch.long, device=scores.device))
        scores = torch.cat(scores_all, dim=1)
        per_image = scores.shape[1]
        img_hw = scores.new_tensor([meta["img_shape"][:2] for meta in img_metas])
        boxes = self.bbox_coder.decode(torch.cat(anchors_all, dim=1).reshape(-1, 4),
                                       torch.cat(deltas_all, dim=1).reshape(-1, 4),
                                       max_shape=img_hw.repeat_interleave(per_image, dim=0))
        boxes = boxes.reshape(num_images, per_image, 4)
        ids = torch.cat(level_ids)
        return [self._nms_single(boxes[i], scores[i], ids, cfg) for i in range(num_images)]

    @staticmethod
    def _nms_single(boxes: torch.Tensor, scores: torch.Tensor, ids: torch.Tensor, cfg: dict) -> torch.Tensor:
        """Drop boxes with w or h <= min_bbox_size, NMS within each level, keep max_per_img."""
        min_size = cfg.get("min_bbox_size", 0)
        if min_size >= 0:
            w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
            valid = (w > min_size) & (h > min_size)
            if not bool(valid.all()):
                boxes, scores, ids = boxes[valid], scores[valid], ids[valid]
        if boxes.numel() == 0:
            return boxes.new_zeros((0, 5))
        if cfg["max_per_img"] > 0:  # exactly the full NMS cut to max_per_img, on fewer boxes
            return _batched_nms_first(boxes, scores, ids, cfg["nms"]["iou_threshold"], cfg["max_per_img"])[0]
        dets, _ = batched_nms(boxes, scores, ids, cfg["nms"]["iou_threshold"])
        return dets[: cfg["max_per_img"]]
