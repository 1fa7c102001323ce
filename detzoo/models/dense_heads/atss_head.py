"""ATSS head (Zhang et al., 2020) with MMDetection 3.x numerics (``ATSSHead``), and the parts it
shares with GFL (:class:`ATSSStyleHead`): GN conv towers, a learnable ``Scale`` per level, and
targets from :class:`~detzoo.models.task_modules.assigners.atss_assigner.ATSSAssigner`.

ATSS: one square anchor per location (octave_base_scale 8), deltas decoded with
``DeltaXYWHBBoxCoder`` and trained with GIoU on the decoded boxes, weighted by the centre-ness
target of each positive and averaged by their sum; focal loss and centre-ness BCE averaged by
the number of positives (at least one per image, as the reference's ``SamplingResult`` counts).
The centre-ness sigmoid multiplies the class score at test time.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from detzoo.errors import ConfigError
from ..build import build_if_needed
from ..layers import ConvModule
from ..layers.scale import Scale
from ..losses import CrossEntropyLoss
from ..layers.init import bias_init_with_prob
from .anchor_head import AnchorHead, flatten_levels


class ATSSStyleHead(AnchorHead):
    """GN towers (``cls_convs.i``, ``reg_convs.i``), ``scales.i`` and ATSS targets; subclasses
    add the predictors in ``_init_predictors`` and name their classification conv in
    ``cls_conv_name`` (its bias starts at a 0.01 prior). Anchors: one per location."""

    cls_conv_name = ""

    def __init__(self, num_classes: int, in_channels: int, anchor_generator, bbox_coder, loss_cls, loss_bbox,
                 stacked_convs: int = 4, feat_channels: int = 256, conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = dict(type="GN", num_groups=32, requires_grad=True),
                 pred_kernel_size: int = 3, train_cfg: Optional[dict] = None, test_cfg: Optional[dict] = None):
        self.stacked_convs = stacked_convs
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.pred_kernel_size = pred_kernel_size
        super().__init__(num_classes=num_classes, in_channels=in_channels, anchor_generator=anchor_generator,
                         bbox_coder=bbox_coder, loss_cls=loss_cls, loss_bbox=loss_bbox, feat_channels=feat_channels,
                         reg_decoded_bbox=True, train_cfg=train_cfg, test_cfg=test_cfg)
        if self.num_base_anchors != 1:
            raise ConfigError(f"{type(self).__name__}: needs one anchor per location (one ratio and one scale), "
                              f"the anchor generator gives {self.num_base_anchors}")

    def _init_layers(self) -> None:
        self.cls_convs = nn.ModuleList()
        self.reg_convs = nn.ModuleList()
        for i in range(self.stacked_convs):
            channels = self.in_channels if i == 0 else self.feat_channels
            for tower in (self.cls_convs, self.reg_convs):
                tower.append(ConvModule(channels, self.feat_channels, 3, stride=1, padding=1,
                                        conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg))
        self._init_predictors()
        self.scales = nn.ModuleList([Scale(1.0) for _ in self.anchor_generator.strides])

    def _init_predictors(self) -> None:
        raise NotImplementedError

    def init_weights(self) -> None:
        """The reference's init_cfg: every conv N(0, 0.01), zero bias; the classifier's bias at a
        0.01 prior probability."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.constant_(getattr(self, self.cls_conv_name).bias, bias_init_with_prob(0.01))

    def towers(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        cls_feat, reg_feat = x, x
        for layer in self.cls_convs:
            cls_feat = layer(cls_feat)
        for layer in self.reg_convs:
            reg_feat = layer(reg_feat)
        return cls_feat, reg_feat

    # -- targets -------------------------------------------------------------------------------
    def atss_targets(self, anchors: List[torch.Tensor], img_metas: List[dict], gt_bboxes: List[torch.Tensor],
                     gt_labels: List[torch.Tensor], gt_bboxes_ignore: Optional[List[torch.Tensor]],
                     featmap_sizes: Sequence[Tuple[int, int]]):
        """anchors: per level [N_l, 4] -> labels [B, N] (num_classes = background),
        label_weights [B, N], bbox_targets [B, N, 4] (the assigned gt boxes), avg_factor (sum over
        images of max(num positives, 1))."""
        cfg = self.train_cfg
        if cfg is None or cfg.get("assigner") is None:
            raise ConfigError(f"{type(self).__name__}: training needs train_cfg.assigner (ATSSAssigner)")
        num_level = [a.shape[0] for a in anchors]
        flat_anchors = torch.cat(anchors)
        labels, weights, targets, avg_factor = [], [], [], 0
        for i, meta in enumerate(img_metas):
            inside = torch.cat(self.anchor_generator.valid_flags(featmap_sizes, meta["pad_shape"], flat_anchors.device))
            border = cfg.get("allowed_border", -1)
            if border >= 0:
                h, w = meta["img_shape"][:2]
                inside = inside & (flat_anchors[:, 0] >= -border) & (flat_anchors[:, 1] >= -border) \
                    & (flat_anchors[:, 2] < w + border) & (flat_anchors[:, 3] < h + border)
            level_inside = [int(f.sum()) for f in inside.split(num_level)]
            assign = cfg["assigner"].assign(flat_anchors[inside], level_inside, gt_bboxes[i],
                                            None if gt_bboxes_ignore is None else gt_bboxes_ignore[i], gt_labels[i])
            inside_idx = inside.nonzero(as_tuple=True)[0]
            pos, neg = assign.gt_inds > 0, assign.gt_inds == 0
            img_labels = torch.full((flat_anchors.shape[0],), self.num_classes, dtype=torch.long,
                                    device=flat_anchors.device)
            img_weights = flat_anchors.new_zeros(flat_anchors.shape[0])
            img_targets = flat_anchors.new_zeros(flat_anchors.shape)
            pos_idx, neg_idx = inside_idx[pos], inside_idx[neg]
            if pos_idx.numel() > 0:
                img_targets[pos_idx] = gt_bboxes[i][assign.gt_inds[pos] - 1].to(flat_anchors.dtype)
                img_labels[pos_idx] = gt_labels[i][assign.gt_inds[pos] - 1]
                pos_weight = cfg.get("pos_weight", -1)
                img_weights[pos_idx] = 1.0 if pos_weight <= 0 else pos_weight
            img_weights[neg_idx] = 1.0
            labels.append(img_labels)
            weights.append(img_weights)
            targets.append(img_targets)
            avg_factor += max(pos_idx.numel(), 1)
        return torch.stack(labels), torch.stack(weights), torch.stack(targets), float(avg_factor)

    @staticmethod
    def anchor_center(anchors: torch.Tensor) -> torch.Tensor:
        """[..., 4] boxes -> [..., 2] centres."""
        return (anchors[..., :2] + anchors[..., 2:]) / 2


class ATSSHead(ATSSStyleHead):
    """Keys: ``cls_convs.i``, ``reg_convs.i`` (ConvModule + GN), ``atss_cls``, ``atss_reg``,
    ``atss_centerness``, ``scales.i.scale``. ``forward`` returns (cls_scores, bbox_preds (deltas),
    centernesses) per level."""

    cls_conv_name = "atss_cls"

    def __init__(self, num_classes: int, in_channels: int, anchor_generator, bbox_coder, loss_cls, loss_bbox,
                 loss_centerness=None, reg_decoded_bbox: bool = True, **kwargs):
        if not reg_decoded_bbox:
            raise ConfigError("ATSSHead: reg_decoded_bbox=False is not supported; the box loss is an IoU-type loss "
                              "on decoded boxes")
        super().__init__(num_classes, in_channels, anchor_generator, bbox_coder, loss_cls, loss_bbox, **kwargs)
        self.loss_centerness = (build_if_needed(loss_centerness) if loss_centerness is not None
                                else CrossEntropyLoss(use_sigmoid=True, loss_weight=1.0))

    def _init_predictors(self) -> None:
        pad = self.pred_kernel_size // 2
        self.atss_cls = nn.Conv2d(self.feat_channels, self.cls_out_channels, self.pred_kernel_size, padding=pad)
        self.atss_reg = nn.Conv2d(self.feat_channels, 4, self.pred_kernel_size, padding=pad)
        self.atss_centerness = nn.Conv2d(self.feat_channels, 1, self.pred_kernel_size, padding=pad)

    def forward(self, feats: Sequence[torch.Tensor]):
        outs = [self.forward_single(x, scale) for x, scale in zip(feats, self.scales)]
        return [o[0] for o in outs], [o[1] for o in outs], [o[2] for o in outs]

    def forward_single(self, x: torch.Tensor, scale: Scale) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cls_feat, reg_feat = self.towers(x)
        return (self.atss_cls(cls_feat), scale(self.atss_reg(reg_feat)).float(), self.atss_centerness(reg_feat))

    def loss(self, cls_scores: List[torch.Tensor], bbox_preds: List[torch.Tensor], centernesses: List[torch.Tensor],
             gt_bboxes: List[torch.Tensor], gt_labels: List[torch.Tensor], img_metas: List[dict],
             gt_bboxes_ignore: Optional[List[torch.Tensor]] = None) -> Dict[str, torch.Tensor]:
        featmap_sizes = [tuple(c.shape[-2:]) for c in cls_scores]
        anchors = self.priors_of(featmap_sizes, cls_scores[0].device)
        labels, label_weights, gt_targets, avg_factor = self.atss_targets(
            anchors, img_metas, gt_bboxes, gt_labels, gt_bboxes_ignore, featmap_sizes)
        num_imgs = len(img_metas)
        cls = flatten_levels(cls_scores, self.cls_out_channels).reshape(-1, self.cls_out_channels)
        reg = flatten_levels(bbox_preds, 4).reshape(-1, 4)
        ctr = flatten_levels(centernesses, 1).reshape(-1)
        all_anchors = torch.cat(anchors)[None].expand(num_imgs, -1, -1).reshape(-1, 4)
        labels, label_weights, gt_targets = labels.reshape(-1), label_weights.reshape(-1), gt_targets.reshape(-1, 4)

        # the reference sums per-level losses with shared averaging factors: the same as one sum
        loss_cls = self.loss_cls(cls, labels, label_weights, avg_factor=avg_factor)
        pos = ((labels >= 0) & (labels < self.num_classes)).nonzero(as_tuple=True)[0]
        if pos.numel() == 0:
            return {"loss_cls": loss_cls, "loss_bbox": reg.sum() * 0, "loss_centerness": ctr.sum() * 0}
        pos_anchors, pos_gt = all_anchors[pos], gt_targets[pos]
        ctr_targets = self.centerness_target(pos_anchors, pos_gt)
        pred_boxes = self.bbox_coder.decode(pos_anchors, reg[pos])
        loss_bbox = self.loss_bbox(pred_boxes, pos_gt, weight=ctr_targets, avg_factor=1.0)
        loss_bbox = loss_bbox / max(float(ctr_targets.sum()), 1.0)
        loss_centerness = self.loss_centerness(ctr[pos], ctr_targets, avg_factor=avg_factor)
        return {"loss_cls": loss_cls, "loss_bbox": loss_bbox, "loss_centerness": loss_centerness}

    def centerness_target(self, anchors: torch.Tensor, gts: torch.Tensor) -> torch.Tensor:
        """anchors, gts [P, 4] -> [P]: FCOS centre-ness of each anchor centre within its gt
        (positives only: their centres lie inside the gt, so every ratio is positive)."""
        centres = self.anchor_center(anchors)
        left_right = torch.stack([centres[:, 0] - gts[:, 0], gts[:, 2] - centres[:, 0]], dim=1)
        top_bottom = torch.stack([centres[:, 1] - gts[:, 1], gts[:, 3] - centres[:, 1]], dim=1)
        return torch.sqrt(left_right.min(dim=-1).values / left_right.max(dim=-1).values
                          * top_bottom.min(dim=-1).values / top_bottom.max(dim=-1).values)
