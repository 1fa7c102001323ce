"""Box classification and regression on pooled RoI features (MMDetection ``Shared2FCBBoxHead``)."""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from detzoo.ops import multiclass_nms
from detzoo.structures import DetResult
from ...losses import accuracy
from ...build import build_if_needed
from ...task_modules import SamplingResult


class Shared2FCBBoxHead(nn.Module):
    """Flatten [K, C, S, S] -> fc -> relu -> fc -> relu -> (fc_cls [K, num_classes + 1],
    fc_reg [K, 4 * num_classes] or [K, 4] when class-agnostic).

    Class index ``num_classes`` is background (MMDetection >= 2.0 order). Layer names follow
    MMDetection so its checkpoints load: shared_fcs.{0,1}, fc_cls, fc_reg.
    """

    def __init__(self, num_classes: int, bbox_coder, loss_cls, loss_bbox, in_channels: int = 256,
                 fc_out_channels: int = 1024, roi_feat_size: int = 7, num_shared_fcs: int = 2,
                 reg_class_agnostic: bool = False, reg_decoded_bbox: bool = False):
        super().__init__()
        self.num_classes = num_classes
        self.bbox_coder = build_if_needed(bbox_coder)
        self.loss_cls = build_if_needed(loss_cls)
        self.loss_bbox = build_if_needed(loss_bbox)
        self.reg_class_agnostic = reg_class_agnostic
        self.reg_decoded_bbox = reg_decoded_bbox
        in_features = in_channels * roi_feat_size * roi_feat_size
        self.shared_fcs = nn.ModuleList()
        for i in range(num_shared_fcs):
            self.shared_fcs.append(nn.Linear(in_features if i == 0 else fc_out_channels, fc_out_channels))
        last = fc_out_channels if num_shared_fcs > 0 else in_features
        self.fc_cls = nn.Linear(last, num_classes + 1)
        self.fc_reg = nn.Linear(last, 4 if reg_class_agnostic else 4 * num_classes)
        self.init_weights()

    def init_weights(self) -> None:
        for fc in self.shared_fcs:
            nn.init.xavier_uniform_(fc.weight)
            nn.init.zeros_(fc.bias)
        nn.init.normal_(self.fc_cls.weight, std=0.01)
        nn.init.zeros_(self.fc_cls.bias)
        nn.init.normal_(self.fc_reg.weight, std=0.001)
        nn.init.zeros_(self.fc_reg.bias)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        x = x.flatten(1)
        for fc in self.shared_fcs:
            x = F.relu(fc(x), inplace=True)
        return self.fc_cls(x), self.fc_reg(x)

    # -- training ------------------------------------------------------------------------------
    def get_targets(self, samples: List[SamplingResult], pos_weight: float = -1):
        """Concatenated over images in RoI order (positives then negatives per image):
        labels [R], label_weights [R], bbox_targets [R, 4], bbox_weights [R, 4]."""
        labels, label_weights, targets, target_weights = [], [], [], []
        for s in samples:
            num_pos, num_neg = s.pos_bboxes.shape[0], s.neg_bboxes.shape[0]
            device = s.pos_bboxes.device
            lab = torch.full((num_pos + num_neg,), self.num_classes, dtype=torch.long, device=device)
            lab[:num_pos] = s.pos_gt_labels
            lw = torch.ones(num_pos + num_neg, device=device)
            if pos_weight > 0:
                lw[:num_pos] = pos_weight
            tgt = s.pos_bboxes.new_zeros((num_pos + num_neg, 4))
            tw = s.pos_bboxes.new_zeros((num_pos + num_neg, 4))
            if num_pos > 0:
                tgt[:num_pos] = (s.pos_gt_bboxes if self.reg_decoded_bbox
                                 else self.bbox_coder.encode(s.pos_bboxes, s.pos_gt_bboxes))
                tw[:num_pos] = 1.0
            labels.append(lab)
            label_weights.append(lw)
            targets.append(tgt)
            target_weights.append(tw)
        return torch.cat(labels), torch.cat(label_weights), torch.cat(targets), torch.cat(target_weights)

    def loss(self, cls_score: torch.Tensor, bbox_pred: torch.Tensor, rois: torch.Tensor, labels: torch.Tensor,
             label_weights: torch.Tensor, bbox_targets: torch.Tensor, bbox_weights: torch.Tensor
             ) -> Dict[str, torch.Tensor]:
        avg_factor = max(float((label_weights > 0).sum().item()), 1.0)
        losses = {"loss_cls": self.loss_cls(cls_score, labels, label_weights, avg_factor=avg_factor),
                  "acc": accuracy(cls_score, labels)}
        pos = (labels >= 0) & (labels < self.num_classes)
        if pos.any():
            pred = bbox_pred.reshape(bbox_pred.shape[0], -1, 4)
            if self.reg_class_agnostic:
                pos_pred = pred[pos, 0]
            else:
                pos_pred = pred[pos, labels[pos]]
            if self.reg_decoded_bbox:
                pos_pred = self.bbox_coder.decode(rois[pos, 1:], pos_pred)
            # MMDetection 2.x averages the box loss over all sampled RoIs, not only positives.
            losses["loss_bbox"] = self.loss_bbox(pos_pred, bbox_targets[pos], bbox_weights[pos],
                                                 avg_factor=bbox_targets.shape[0])
        else:
            losses["loss_bbox"] = bbox_pred[pos].sum()
        return losses

    # -- inference -----------------------------------------------------------------------------
    def predict_single(self, rois: torch.Tensor, cls_score: torch.Tensor, bbox_pred: torch.Tensor,
                       img_meta: dict, cfg: dict, rescale: bool = True) -> DetResult:
        """rois [K, 5] of one image -> detections (original-image pixels when ``rescale``)."""
        scores = F.softmax(cls_score, dim=-1)
        boxes = self.bbox_coder.decode(rois[:, 1:], bbox_pred, max_shape=img_meta["img_shape"])
        if rescale and boxes.numel() > 0:
            scale = boxes.new_tensor(img_meta["scale_factor"])
            boxes = (boxes.reshape(boxes.shape[0], -1, 4) / scale).reshape(boxes.shape[0], -1)
        dets, labels = multiclass_nms(boxes, scores, cfg["score_thr"], cfg["nms"]["iou_threshold"],
                                      cfg.get("max_per_img", -1))
        return DetResult(dets[:, :4], dets[:, 4], labels)
