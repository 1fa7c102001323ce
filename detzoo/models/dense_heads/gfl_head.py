"""GFL head (Li et al., 2020, Generalized Focal Loss) with MMDetection 3.x numerics (``GFLHead``).

Each box side is a discrete distribution over 0..reg_max (in units of the level's stride); its
expectation (:class:`Integral`) is the side distance. Classification predicts a joint
class-quality score trained with Quality Focal Loss against the IoU of the decoded box with its
gt; the distributions get Distribution Focal Loss and the decoded boxes GIoU, both weighted by the
positive's best class score and averaged by the sum of those weights. Targets come from ATSS
(:class:`~detzoo.models.dense_heads.atss_head.ATSSStyleHead`); there is no centre-ness branch.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from detzoo.ops import bbox_overlaps
from ..build import build_if_needed
from ..layers.scale import Scale
from ..losses.gfocal_loss import DistributionFocalLoss
from ..task_modules.coders.distance_point import DistancePointBBoxCoder, distance2bbox
from .anchor_head import flatten_levels
from .atss_head import ATSSStyleHead


class Integral(nn.Module):
    """[..., 4 * (reg_max + 1)] logits (side-major: left, top, right, bottom) -> [N, 4] expected
    distances ``sum_i softmax(logits)_i * i``. ``project`` (0..reg_max) is a state-dict buffer."""

    def __init__(self, reg_max: int = 16):
        super().__init__()
        self.reg_max = reg_max
        self.register_buffer("project", torch.linspace(0, reg_max, reg_max + 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = F.softmax(x.reshape(-1, self.reg_max + 1), dim=1)
        return F.linear(probs, self.project.type_as(probs)).reshape(-1, 4)


class GFLHead(ATSSStyleHead):
    """Keys: ``cls_convs.i``, ``reg_convs.i``, ``gfl_cls``, ``gfl_reg`` (4 * (reg_max + 1)
    channels), ``scales.i.scale``, ``integral.project``. ``forward`` returns (cls_scores,
    bbox_preds) per level. Post-processing priors are anchor centres with the level's stride."""

    cls_conv_name = "gfl_cls"

    def __init__(self, num_classes: int, in_channels: int, anchor_generator, loss_cls, loss_bbox, loss_dfl=None,
                 reg_max: int = 16, bbox_coder=None, **kwargs):
        self.reg_max = reg_max
        super().__init__(num_classes, in_channels, anchor_generator,
                         bbox_coder if bbox_coder is not None else DistancePointBBoxCoder(), loss_cls, loss_bbox,
                         **kwargs)
        self.integral = Integral(reg_max)
        self.loss_dfl = build_if_needed(loss_dfl) if loss_dfl is not None else DistributionFocalLoss(loss_weight=0.25)

    @property
    def bbox_pred_channels(self) -> int:
        return 4 * (self.reg_max + 1)

    def _init_predictors(self) -> None:
        self.gfl_cls = nn.Conv2d(self.feat_channels, self.cls_out_channels, 3, padding=1)
        self.gfl_reg = nn.Conv2d(self.feat_channels, 4 * (self.reg_max + 1), 3, padding=1)

    def forward(self, feats: Sequence[torch.Tensor]) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        outs = [self.forward_single(x, scale) for x, scale in zip(feats, self.scales)]
        return [o[0] for o in outs], [o[1] for o in outs]

    def forward_single(self, x: torch.Tensor, scale: Scale) -> Tuple[torch.Tensor, torch.Tensor]:
        cls_feat, reg_feat = self.towers(x)
        return self.gfl_cls(cls_feat), scale(self.gfl_reg(reg_feat)).float()

    # -- post-processing hooks of BaseDenseHead --------------------------------------------------
    def priors_of(self, featmap_sizes: Sequence[Tuple[int, int]], device) -> List[torch.Tensor]:
        """Per level [H * W, 4]: anchor centre (x, y) and the level's (stride_w, stride_h)."""
        priors = []
        for anchors, (stride_w, stride_h) in zip(self.anchor_generator.grid_anchors(featmap_sizes, device=device),
                                                 self.anchor_generator.strides):
            strides = anchors.new_tensor([stride_w, stride_h]).expand(anchors.shape[0], 2)
            priors.append(torch.cat([self.anchor_center(anchors), strides], dim=1))
        return priors

    def decode(self, priors: torch.Tensor, bbox_pred: torch.Tensor, max_shape) -> torch.Tensor:
        """priors [N, 4] from ``priors_of``, bbox_pred [N, 4 * (reg_max + 1)] -> boxes [N, 4]
        (the expected distances times the stride, clipped to max_shape)."""
        return distance2bbox(priors[:, :2], self.integral(bbox_pred) * priors[:, 2:3],
                             max_shape if getattr(self.bbox_coder, "clip_border", True) else None)

    # -- training ------------------------------------------------------------------------------
    def loss(self, cls_scores: List[torch.Tensor], bbox_preds: List[torch.Tensor], gt_bboxes: List[torch.Tensor],
             gt_labels: List[torch.Tensor], img_metas: List[dict],
             gt_bboxes_ignore: Optional[List[torch.Tensor]] = None) -> Dict[str, torch.Tensor]:
        featmap_sizes = [tuple(c.shape[-2:]) for c in cls_scores]
        anchors = self.anchor_generator.grid_anchors(featmap_sizes, device=cls_scores[0].device)
        labels, label_weights, gt_targets, avg_factor = self.atss_targets(
            anchors, img_metas, gt_bboxes, gt_labels, gt_bboxes_ignore, featmap_sizes)
        num_imgs, bins = len(img_metas), self.reg_max + 1
        cls = flatten_levels(cls_scores, self.cls_out_channels).reshape(-1, self.cls_out_channels)
        reg = flatten_levels(bbox_preds, 4 * bins).reshape(-1, 4 * bins)
        all_anchors = torch.cat(anchors)[None].expand(num_imgs, -1, -1).reshape(-1, 4)
        level_strides = torch.cat([a.new_full((a.shape[0],), float(s[0]))
                                   for a, s in zip(anchors, self.anchor_generator.strides)])
        all_strides = level_strides[None].expand(num_imgs, -1).reshape(-1)
        labels, label_weights, gt_targets = labels.reshape(-1), label_weights.reshape(-1), gt_targets.reshape(-1, 4)

        pos = ((labels >= 0) & (labels < self.num_classes)).nonzero(as_tuple=True)[0]
        quality = label_weights.new_zeros(labels.shape)
        if pos.numel() > 0:
            stride = all_strides[pos][:, None]
            centres = self.anchor_center(all_anchors[pos]) / stride  # everything in stride units
            weight = cls.detach().sigmoid().max(dim=1).values[pos]
            pos_reg = reg[pos]
            pred_boxes = self.bbox_coder.decode(centres, self.integral(pos_reg))
            target_boxes = gt_targets[pos] / stride
            quality[pos] = bbox_overlaps(pred_boxes.detach(), target_boxes, is_aligned=True)
            target_corners = self.bbox_coder.encode(centres, target_boxes, self.reg_max).reshape(-1)
            norm = max(float(weight.sum()), 1.0)
            loss_bbox = self.loss_bbox(pred_boxes, target_boxes, weight=weight, avg_factor=1.0) / norm
            loss_dfl = self.loss_dfl(pos_reg.reshape(-1, bins), target_corners,
                                     weight=weight[:, None].expand(-1, 4).reshape(-1), avg_factor=4.0) / norm
        else:
            loss_bbox = loss_dfl = reg.sum() * 0
        loss_cls = self.loss_cls(cls, (labels, quality), weight=label_weights, avg_factor=avg_factor)
        return {"loss_cls": loss_cls, "loss_bbox": loss_bbox, "loss_dfl": loss_dfl}
