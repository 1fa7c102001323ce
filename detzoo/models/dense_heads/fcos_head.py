"""FCOS head (Tian et al., 2019) with MMDetection 3.x numerics (``FCOSHead``).

Per location: class logits, four side distances and a centre-ness logit. Training targets
(``get_targets``): a point is a candidate for a gt when it lies inside the box (or, with centre
sampling, inside the box clipped to ``radius * stride`` around the box centre) and its largest
side distance falls in the level's regress range; among several candidates the gt of smallest
area wins. Losses: focal over all points / num_pos; IoU (or GIoU) on decoded boxes weighted by
the centre-ness target, averaged by the sum of those targets; BCE on centre-ness / num_pos.
At test time the centre-ness sigmoid multiplies the class score (``BaseDenseHead`` score factors).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from detzoo.errors import ConfigError
from ..build import build_if_needed
from ..layers.scale import Scale
from ..losses import CrossEntropyLoss, FocalLoss
from ..losses.iou_loss import IoULoss
from .anchor_free_head import AnchorFreeHead

INF = 1e8


class FCOSHead(AnchorFreeHead):
    """Args (beyond :class:`AnchorFreeHead`'s):
        regress_ranges: per level (low, high) of the largest side distance a positive may have.
        center_sampling, center_sample_radius: positives only within ``radius * stride`` of the
            gt centre.
        norm_on_bbox: regress distances divided by the level's stride, through a ReLU instead of
            exp (multiplied back by the stride at test time).
        centerness_on_reg: the centre-ness branch reads the regression tower (else the cls tower).
        loss_centerness: BCE with logits against the centre-ness target.
    Keys: ``cls_convs.i``, ``reg_convs.i``, ``conv_cls``, ``conv_reg``, ``conv_centerness``,
    ``scales.i.scale``.
    """

    def __init__(self, num_classes: int, in_channels: int,
                 regress_ranges: Sequence[Tuple[float, float]] = ((-1, 64), (64, 128), (128, 256), (256, 512),
                                                                  (512, INF)),
                 center_sampling: bool = False, center_sample_radius: float = 1.5, norm_on_bbox: bool = False,
                 centerness_on_reg: bool = False, loss_cls=None, loss_bbox=None, loss_centerness=None,
                 norm_cfg: Optional[dict] = dict(type="GN", num_groups=32, requires_grad=True), **kwargs):
        self.regress_ranges = [tuple(float(v) for v in r) for r in regress_ranges]
        self.center_sampling = center_sampling
        self.center_sample_radius = center_sample_radius
        self.norm_on_bbox = norm_on_bbox
        self.centerness_on_reg = centerness_on_reg
        loss_cls = loss_cls if loss_cls is not None else FocalLoss(use_sigmoid=True, gamma=2.0, alpha=0.25)
        loss_bbox = loss_bbox if loss_bbox is not None else IoULoss(loss_weight=1.0)
        super().__init__(num_classes, in_channels, loss_cls=loss_cls, loss_bbox=loss_bbox, norm_cfg=norm_cfg,
                         **kwargs)
        if len(self.regress_ranges) != len(self.strides):
            raise ConfigError(f"FCOSHead: {len(self.regress_ranges)} regress_ranges for {len(self.strides)} "
                              "strides; give one (low, high) per level")
        self.loss_centerness = (build_if_needed(loss_centerness) if loss_centerness is not None
                                else CrossEntropyLoss(use_sigmoid=True, loss_weight=1.0))

    def _init_layers(self) -> None:
        super()._init_layers()
        self.conv_centerness = nn.Conv2d(self.feat_channels, 1, 3, padding=1)
        self.scales = nn.ModuleList([Scale(1.0) for _ in self.strides])

    def forward(self, feats: Sequence[torch.Tensor]) -> Tuple[List[torch.Tensor], List[torch.Tensor], List[torch.Tensor]]:
        """feats: per level [B, C, H, W] -> (cls_scores [B, num_classes, H, W], bbox_preds
        [B, 4, H, W] (distances; in pixels at test time), centernesses [B, 1, H, W]) per level."""
        outs = [self.forward_single(x, scale, stride) for x, scale, stride in zip(feats, self.scales, self.strides)]
        return [o[0] for o in outs], [o[1] for o in outs], [o[2] for o in outs]

    def forward_single(self, x: torch.Tensor, scale: Scale, stride) -> Tuple[torch.Tensor, ...]:
        cls_score, bbox_pred, cls_feat, reg_feat = super().forward_single(x)
        centerness = self.conv_centerness(reg_feat if self.centerness_on_reg else cls_feat)
        bbox_pred = scale(bbox_pred).float()
        if self.norm_on_bbox:
            bbox_pred = bbox_pred.clamp(min=0)
            if not self.training:
                bbox_pred = bbox_pred * (stride[0] if isinstance(stride, (tuple, list)) else stride)
        else:
            bbox_pred = bbox_pred.exp()
        return cls_score, bbox_pred, centerness

    # -- training ------------------------------------------------------------------------------
    def loss(self, cls_scores: List[torch.Tensor], bbox_preds: List[torch.Tensor], centernesses: List[torch.Tensor],
             gt_bboxes: List[torch.Tensor], gt_labels: List[torch.Tensor], img_metas: List[dict],
             gt_bboxes_ignore: Optional[List[torch.Tensor]] = None) -> Dict[str, torch.Tensor]:
        """Outputs of ``forward`` (training mode) and per-image gt -> loss_cls, loss_bbox,
        loss_centerness. ``gt_bboxes_ignore`` is not used (as in the reference)."""
        featmap_sizes = [tuple(c.shape[-2:]) for c in cls_scores]
        points = self.prior_generator.grid_priors(featmap_sizes, dtype=bbox_preds[0].dtype,
                                                  device=bbox_preds[0].device)
        labels, bbox_targets = self.get_targets(points, gt_bboxes, gt_labels)
        num_imgs = cls_scores[0].shape[0]
        # flattened level by level, images within a level: the order of get_targets
        flat_cls = torch.cat([c.permute(0, 2, 3, 1).reshape(-1, self.cls_out_channels) for c in cls_scores])
        flat_bbox = torch.cat([b.permute(0, 2, 3, 1).reshape(-1, 4) for b in bbox_preds])
        flat_ctr = torch.cat([c.permute(0, 2, 3, 1).reshape(-1) for c in centernesses])
        flat_labels, flat_targets = torch.cat(labels), torch.cat(bbox_targets)
        flat_points = torch.cat([p.repeat(num_imgs, 1) for p in points])

        pos = ((flat_labels >= 0) & (flat_labels < self.num_classes)).nonzero(as_tuple=True)[0]
        num_pos = max(float(pos.numel()), 1.0)  # the reference averages over ranks; one process here
        loss_cls = self.loss_cls(flat_cls, flat_labels, avg_factor=num_pos)

        pos_bbox, pos_ctr = flat_bbox[pos], flat_ctr[pos]
        if pos.numel() == 0:
            return {"loss_cls": loss_cls, "loss_bbox": pos_bbox.sum(), "loss_centerness": pos_ctr.sum()}
        pos_targets = flat_targets[pos]
        ctr_targets = self.centerness_target(pos_targets)
        ctr_denorm = max(float(ctr_targets.sum()), 1e-6)
        pos_points = flat_points[pos]
        # with norm_on_bbox both distances are in stride units around pixel points, as the
        # reference does; the IoU is computed on those boxes
        loss_bbox = self.loss_bbox(self.bbox_coder.decode(pos_points, pos_bbox),
                                   self.bbox_coder.decode(pos_points, pos_targets),
                                   weight=ctr_targets, avg_factor=ctr_denorm)
        loss_centerness = self.loss_centerness(pos_ctr, ctr_targets, avg_factor=num_pos)
        return {"loss_cls": loss_cls, "loss_bbox": loss_bbox, "loss_centerness": loss_centerness}

    def get_targets(self, points: List[torch.Tensor], gt_bboxes: List[torch.Tensor],
                    gt_labels: List[torch.Tensor]) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """points: per level [P_l, 2] -> (labels per level [B * P_l] (num_classes = background),
        bbox_targets per level [B * P_l, 4] (left, top, right, bottom; divided by the stride when
        norm_on_bbox)), images concatenated within each level."""
        num_points = [p.shape[0] for p in points]
        ranges = torch.cat([p.new_tensor(r)[None].expand(p.shape[0], 2) for p, r in zip(points, self.regress_ranges)])
        strides = torch.cat([p.new_full((p.shape[0],), float(self._stride(i))) for i, p in enumerate(points)])
        all_points = torch.cat(points)
        per_image = [self._get_targets_single(b, l, all_points, ranges, strides) for b, l in zip(gt_bboxes, gt_labels)]
        labels = [torch.cat(level) for level in zip(*[lab.split(num_points) for lab, _ in per_image])]
        targets = [torch.cat(level) for level in zip(*[tgt.split(num_points) for _, tgt in per_image])]
        if self.norm_on_bbox:
            targets = [t / self._stride(i) for i, t in enumerate(targets)]
        return labels, targets

    def _stride(self, level: int) -> float:
        stride = self.strides[level]
        return stride[0] if isinstance(stride, (tuple, list)) else stride

    def _get_targets_single(self, gt_bboxes: torch.Tensor, gt_labels: torch.Tensor, points: torch.Tensor,
                            ranges: torch.Tensor, strides: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """One image: gt [G, 4], labels [G]; points [P, 2], ranges [P, 2], strides [P] ->
        labels [P], bbox_targets [P, 4] in pixels."""
        num_points, num_gts = points.shape[0], gt_bboxes.shape[0]
        if num_gts == 0:
            return (torch.full((num_points,), self.num_classes, dtype=torch.long, device=points.device),
                    points.new_zeros((num_points, 4)))
        gt_bboxes = gt_bboxes.to(points.dtype)
        areas = ((gt_bboxes[:, 2] - gt_bboxes[:, 0]) * (gt_bboxes[:, 3] - gt_bboxes[:, 1]))[None, :].repeat(num_points, 1)
        xs, ys = points[:, 0, None], points[:, 1, None]  # [P, 1] against [G]
        bbox_targets = torch.stack([xs - gt_bboxes[:, 0], ys - gt_bboxes[:, 1],
                                    gt_bboxes[:, 2] - xs, gt_bboxes[:, 3] - ys], dim=-1)  # [P, G, 4]
        if self.center_sampling:
            radius = strides[:, None] * self.center_sample_radius  # [P, 1]
            cx = (gt_bboxes[:, 0] + gt_bboxes[:, 2]) / 2
            cy = (gt_bboxes[:, 1] + gt_bboxes[:, 3]) / 2
            x1 = torch.maximum(cx - radius, gt_bboxes[:, 0])
            y1 = torch.maximum(cy - radius, gt_bboxes[:, 1])
            x2 = torch.minimum(cx + radius, gt_bboxes[:, 2])
            y2 = torch.minimum(cy + radius, gt_bboxes[:, 3])
            inside = torch.stack([xs - x1, ys - y1, x2 - xs, y2 - ys], dim=-1).min(dim=-1).values > 0
        else:
            inside = bbox_targets.min(dim=-1).values > 0
        max_distance = bbox_targets.max(dim=-1).values
        in_range = (max_distance >= ranges[:, 0, None]) & (max_distance <= ranges[:, 1, None])
        areas[~inside] = INF
        areas[~in_range] = INF
        min_area, best = areas.min(dim=1)  # ties: the first gt, as torch.min returns
        labels = gt_labels[best].clone()
        labels[min_area == INF] = self.num_classes
        return labels, bbox_targets[torch.arange(num_points, device=points.device), best]

    @staticmethod
    def centerness_target(pos_bbox_targets: torch.Tensor) -> torch.Tensor:
        """[P, 4] (left, top, right, bottom) -> [P]:
        sqrt(min(l, r) / max(l, r) * min(t, b) / max(t, b))."""
        left_right = pos_bbox_targets[:, [0, 2]]
        top_bottom = pos_bbox_targets[:, [1, 3]]
        if left_right.numel() == 0:
            return left_right[:, 0]
        ratio = (left_right.min(dim=-1).values / left_right.max(dim=-1).values
                 * top_bottom.min(dim=-1).values / top_bottom.max(dim=-1).values)
        return torch.sqrt(ratio)
