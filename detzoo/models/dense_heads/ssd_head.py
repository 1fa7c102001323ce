"""SSD head (MMDetection 3.x ``SSDHead``): one conv per level for class scores and one for boxes,
softmax over ``num_classes + 1`` (background last), hard negative mining in the loss.

Keys: ``cls_convs.<level>.0.{weight,bias}`` (A_l * (num_classes + 1) channels) and
``reg_convs.<level>.0.{weight,bias}`` (A_l * 4), A_l = anchors per location of level l (4 or 6
in SSD300). Channel layout per location is ``a * C + c``, as in every anchor head.

Training (``train_cfg``: assigner, sampler (PseudoSampler), neg_pos_ratio, smoothl1_beta,
allowed_border, pos_weight): targets come from ``AnchorHead.get_targets``. Per image, the
classification loss sums the cross entropy of every positive anchor and of the
``neg_pos_ratio * num_pos`` negatives with the largest cross entropy (all negatives if there are
fewer); the box loss is smooth L1 over the positives. Both are divided by
``sum over images of max(num_pos, 1)`` (mmdet ``SamplingResult.avg_factor`` with a
PseudoSampler). Test-time post-processing is ``BaseDenseHead``'s with softmax scores.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from detzoo.errors import ConfigError
from ..losses import SmoothL1Loss
from .anchor_head import AnchorHead, flatten_levels

__all__ = ["SSDHead", "hard_negative_mined_sum"]


def hard_negative_mined_sum(loss_per_anchor: torch.Tensor, labels: torch.Tensor, num_classes: int,
                            neg_pos_ratio: float) -> torch.Tensor:
    """loss_per_anchor, labels: [B, N] -> scalar: per image, the loss of all positives
    (0 <= label < num_classes) plus the ``neg_pos_ratio * num_pos`` largest losses among the
    negatives (label == num_classes), summed over images."""
    positive = (labels >= 0) & (labels < num_classes)
    negative = labels == num_classes
    num_neg = torch.minimum((neg_pos_ratio * positive.sum(dim=1)).long(), negative.sum(dim=1))
    neg_losses = torch.where(negative, loss_per_anchor, loss_per_anchor.new_tensor(float("-inf")))
    ranked = neg_losses.sort(dim=1, descending=True).values
    taken = torch.arange(ranked.shape[1], device=ranked.device)[None, :] < num_neg[:, None]
    return (loss_per_anchor * positive).sum() + torch.where(taken, ranked, ranked.new_zeros(())).sum()


class SSDHead(AnchorHead):
    """``forward(feats)``: per-level maps -> (cls_scores [B, A_l * (num_classes + 1), H, W],
    bbox_preds [B, A_l * 4, H, W]) per level.

    Args:
        num_classes: foreground classes (80 for COCO); background is channel ``num_classes``.
        in_channels: channels of each input level.
        anchor_generator: an ``SSDAnchorGenerator`` (or its config dict).
        bbox_coder: ``DeltaXYWHBBoxCoder`` with stds (0.1, 0.1, 0.2, 0.2) in SSD configs.
        kernel_size: of the prediction convs (3 in MMDetection; PaddleDetection's SSD uses 1).
        reg_decoded_bbox: apply the box loss to decoded boxes.
    """

    def __init__(self, num_classes: int = 80, in_channels: Sequence[int] = (512, 1024, 512, 256, 256, 256),
                 anchor_generator=None, bbox_coder=None, kernel_size: int = 3,
                 reg_decoded_bbox: bool = False, train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None):
        if anchor_generator is None or bbox_coder is None:
            raise ConfigError("SSDHead needs an anchor_generator and a bbox_coder")
        if kernel_size not in (1, 3):
            raise ConfigError(f"SSDHead kernel_size={kernel_size} must be 1 or 3")
        self.kernel_size = kernel_size
        # no loss modules: classification is softmax cross entropy with mining (see loss())
        super().__init__(num_classes, tuple(in_channels), anchor_generator, bbox_coder, loss_cls=None,
                         loss_bbox=None, reg_decoded_bbox=reg_decoded_bbox, train_cfg=train_cfg,
                         test_cfg=test_cfg)

    def _init_layers(self) -> None:
        self.use_sigmoid_cls = False
        self.cls_out_channels = self.num_classes + 1
        self.num_base_priors = list(self.anchor_generator.num_base_anchors)
        if len(self.num_base_priors) != len(self.in_channels):
            raise ConfigError(f"SSDHead: {len(self.in_channels)} in_channels but the anchor generator "
                              f"has {len(self.num_base_priors)} levels")
        pad = self.kernel_size // 2
        self.cls_convs = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, a * self.cls_out_channels, self.kernel_size, padding=pad))
            for c, a in zip(self.in_channels, self.num_base_priors))
        self.reg_convs = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, a * 4, self.kernel_size, padding=pad))
            for c, a in zip(self.in_channels, self.num_base_priors))

    def init_weights(self) -> None:
        # mmdet SSDHead init_cfg: Xavier (uniform) on every Conv2d, bias 0
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, feats: Sequence[torch.Tensor]) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        if len(feats) != len(self.cls_convs):
            raise ValueError(f"SSDHead has {len(self.cls_convs)} levels but got {len(feats)} feature maps")
        return ([conv(x) for conv, x in zip(self.cls_convs, feats)],
                [conv(x) for conv, x in zip(self.reg_convs, feats)])

    def loss(self, cls_scores: List[torch.Tensor], bbox_preds: List[torch.Tensor], gt_bboxes: List[torch.Tensor],
             gt_labels: Optional[List[torch.Tensor]], img_metas: List[dict],
             gt_bboxes_ignore: Optional[List[torch.Tensor]] = None) -> Dict[str, torch.Tensor]:
        if self.train_cfg is None:
            raise ConfigError("SSDHead.loss needs a train_cfg (assigner, neg_pos_ratio, smoothl1_beta)")
        featmap_sizes = [tuple(s.shape[-2:]) for s in cls_scores]
        anchors = torch.cat(self.anchors_of(cls_scores))
        labels, label_weights, bbox_targets, bbox_weights, _, _ = self.get_targets(
            anchors, img_metas, gt_bboxes, gt_labels, gt_bboxes_ignore, featmap_sizes)
        num_images, num_anchors = labels.shape
        num_pos = ((labels >= 0) & (labels < self.num_classes)).sum(dim=1)
        avg_factor = float(num_pos.clamp(min=1).sum())

        cls = flatten_levels(cls_scores, self.cls_out_channels)
        ce = F.cross_entropy(cls.reshape(-1, self.cls_out_channels), labels.reshape(-1), reduction="none")
        ce = ce.reshape(num_images, num_anchors) * label_weights
        loss_cls = hard_negative_mined_sum(ce, labels, self.num_classes, self.train_cfg["neg_pos_ratio"]) / avg_factor

        reg = flatten_levels(bbox_preds, 4)
        if self.reg_decoded_bbox:
            reg = self.bbox_coder.decode(anchors[None].expand(num_images, -1, -1).reshape(-1, 4),
                                         reg.reshape(-1, 4)).reshape(num_images, num_anchors, 4)
        smooth_l1 = SmoothL1Loss(beta=self.train_cfg.get("smoothl1_beta", 1.0))
        loss_bbox = smooth_l1(reg.reshape(-1, 4), bbox_targets.reshape(-1, 4), bbox_weights.reshape(-1, 4),
                              avg_factor=avg_factor)
        return {"loss_cls": loss_cls, "loss_bbox": loss_bbox}
