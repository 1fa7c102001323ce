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
from ...layers import ConvModule
from ...task_modules import SamplingResult


class ConvFCBBoxHead(nn.Module):
    """[K, C, S, S] RoI features -> ``num_shared_convs`` x (3x3 conv [+ norm] + ReLU) -> flatten ->
    ``num_shared_fcs`` x (fc + ReLU) -> (fc_cls [K, num_classes + 1], fc_reg [K, 4 * num_classes]
    or [K, 4] when class-agnostic). MMDetection ``ConvFCBBoxHead`` with shared branches only.

    Class index ``num_classes`` is background (MMDetection >= 2.0 order). Layer names follow
    MMDetection so its checkpoints load: shared_convs.{i}.conv (+ .gn/.bn), shared_fcs.{i},
    fc_cls, fc_reg.
    """

    def __init__(self, num_classes: int, bbox_coder, loss_cls, loss_bbox, in_channels: int = 256,
                 fc_out_channels: int = 1024, roi_feat_size: int = 7, num_shared_convs: int = 0,
                 num_shared_fcs: int = 2, conv_out_channels: int = 256, conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None, reg_class_agnostic: bool = False,
                 reg_decoded_bbox: bool = False, with_avg_pool: bool = False):
        super().__init__()
        self.num_classes = num_classes
        self.bbox_coder = build_if_needed(bbox_coder)
        self.loss_cls = build_if_needed(loss_cls)
        self.loss_bbox = build_if_needed(loss_bbox)
        self.reg_class_agnostic = reg_class_agnostic
        self.reg_decoded_bbox = reg_decoded_bbox
        self.shared_convs = nn.ModuleList(
            ConvModule(in_channels if i == 0 else conv_out_channels, conv_out_channels, 3, padding=1,
                       conv_cfg=conv_cfg, norm_cfg=norm_cfg)
            for i in range(num_shared_convs))
        # with_avg_pool (C4 heads): global average pool before the fcs, so no spatial factor
        self.with_avg_pool = with_avg_pool
        spatial = 1 if with_avg_pool else roi_feat_size * roi_feat_size
        last = (conv_out_channels if num_shared_convs > 0 else in_channels) * spatial
        self.shared_fcs = nn.ModuleList()
        for i in range(num_shared_fcs):
            self.shared_fcs.append(nn.Linear(last if i == 0 else fc_out_channels, fc_out_channels))
        if num_shared_fcs > 0:
            last = fc_out_channels
        self.fc_cls = nn.Linear(last, num_classes + 1)
        self.fc_reg = nn.Linear(last, 4 if reg_class_agnostic else 4 * num_classes)
        self.init_weights()

    def init_weights(self) -> None:
        """fcs Xavier-uniform, classifier N(0, 0.01), regressor N(0, 0.001), zero biases (MMDetection);
        the convs keep ConvModule's Kaiming init."""
        for fc in self.shared_fcs:
            nn.init.xavier_uniform_(fc.weight)
            nn.init.zeros_(fc.bias)
        nn.init.normal_(self.fc_cls.weight, std=0.01)
        nn.init.zeros_(self.fc_cls.bias)
        nn.init.normal_(self.fc_reg.weight, std=0.001)
        nn.init.zeros_(self.fc_reg.bias)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        for conv in self.shared_convs:
            x = conv(x)
        if self.with_avg_pool:
            # MMDetection pools with AvgPool2d(roi_feat_size) over roi_feat_size maps: the mean
            x = x.mean(dim=(2, 3))
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

    # -- cascade refinement ----------------------------------------------------------------------
    def regress_by_class(self, rois: torch.Tensor, labels: torch.Tensor, bbox_pred: torch.Tensor,
                         img_shapes: torch.Tensor) -> torch.Tensor:
        """Apply each RoI's deltas for ``labels`` (or its class-agnostic deltas).

        rois [K, 5] (image index first); labels [K] in [0, num_classes); bbox_pred [K, 4 or 4C];
        img_shapes [num_images, 2] (h, w) to clip to. Returns boxes [K, 4].
        """
        if not self.reg_class_agnostic and bbox_pred.shape[1] > 4:
            rows = torch.arange(bbox_pred.shape[0], device=bbox_pred.device)
            bbox_pred = bbox_pred.reshape(bbox_pred.shape[0], -1, 4)[rows, labels]
        max_shape = img_shapes[rois[:, 0].long()]
        return self.bbox_coder.decode(rois[:, 1:], bbox_pred, max_shape=max_shape)

    @torch.no_grad()
    def refine_bboxes(self, samples: List[SamplingResult], rois: torch.Tensor, cls_score: torch.Tensor,
                      bbox_pred: torch.Tensor, labels: torch.Tensor, img_metas: List[dict]) -> List[torch.Tensor]:
        """The next cascade stage's proposals from this stage's sampled RoIs (MMDetection
        ``BBoxHead.refine_bboxes``): each RoI is regressed by its target class (its predicted
        foreground class when it was sampled as background), and the ground-truth boxes the sampler
        added are dropped. Returns per image [K_i, 4] boxes in input pixels."""
        labels = torch.where(labels == self.num_classes, cls_score[:, :-1].argmax(dim=1), labels)
        img_shapes = rois.new_tensor([meta["img_shape"][:2] for meta in img_metas])
        boxes = self.regress_by_class(rois, labels, bbox_pred, img_shapes)
        # RoIs are laid out image by image, positives first (SamplingResult.bboxes)
        keep = torch.cat([torch.cat([~s.pos_is_gt.bool(),
                                     s.pos_is_gt.new_ones(s.neg_bboxes.shape[0], dtype=torch.bool)])
                          for s in samples])
        counts = [s.pos_bboxes.shape[0] + s.neg_bboxes.shape[0] for s in samples]
        return [b[k] for b, k in zip(boxes.split(counts), keep.split(counts))]

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


class Shared2FCBBoxHead(ConvFCBBoxHead):
    """Two shared fcs (Faster R-CNN's box head): ``ConvFCBBoxHead(num_shared_fcs=2)``."""

    def __init__(self, num_classes: int, bbox_coder, loss_cls, loss_bbox, in_channels: int = 256,
                 fc_out_channels: int = 1024, roi_feat_size: int = 7, **kwargs):
        kwargs.setdefault("num_shared_fcs", 2)
        super().__init__(num_classes, bbox_coder, loss_cls, loss_bbox, in_channels=in_channels,
                         fc_out_channels=fc_out_channels, roi_feat_size=roi_feat_size, **kwargs)


class Shared4Conv1FCBBoxHead(ConvFCBBoxHead):
    """Four shared 3x3 convs then one fc (the GN / GN+WS configs' box head, usually with
    ``norm_cfg=dict(type="GN", num_groups=32)``)."""

    def __init__(self, num_classes: int, bbox_coder, loss_cls, loss_bbox, in_channels: int = 256,
                 fc_out_channels: int = 1024, roi_feat_size: int = 7, **kwargs):
        kwargs.setdefault("num_shared_convs", 4)
        kwargs.setdefault("num_shared_fcs", 1)
        super().__init__(num_classes, bbox_coder, loss_cls, loss_bbox, in_channels=in_channels,
                         fc_out_channels=fc_out_channels, roi_feat_size=roi_feat_size, **kwargs)


class BBoxHead(ConvFCBBoxHead):
    """MMDetection's plain ``BBoxHead``: no shared convs or fcs, ``fc_cls`` / ``fc_reg`` straight
    on the (with ``with_avg_pool``, globally averaged) RoI features. The C4 R-CNNs use it on the
    ``[K, 2048, 7, 7]`` output of the res5 shared head: ``BBoxHead(with_avg_pool=True,
    roi_feat_size=7, in_channels=2048)`` -> ``fc_cls`` 2048 -> num_classes + 1, ``fc_reg``
    2048 -> 4 * num_classes, with no ReLU in between."""

    def __init__(self, num_classes: int, bbox_coder, loss_cls, loss_bbox, in_channels: int = 256,
                 roi_feat_size: int = 7, with_avg_pool: bool = False, **kwargs):
        kwargs.setdefault("num_shared_fcs", 0)
        kwargs.setdefault("num_shared_convs", 0)
        super().__init__(num_classes, bbox_coder, loss_cls, loss_bbox, in_channels=in_channels,
                         roi_feat_size=roi_feat_size, with_avg_pool=with_avg_pool, **kwargs)
