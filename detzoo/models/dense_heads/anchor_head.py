"""Machinery shared by every anchor-based dense head: anchors per image, flattening of the
per-level maps, target assignment and sampling, the classification/regression losses, and
the test-time post-processing of ``BaseDenseHead`` (score threshold and top-k per level, decode,
class-wise NMS). Subclasses define the conv layers (``_init_layers`` and ``forward_single``).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from ..build import build_if_needed
from ..task_modules import PseudoSampler
from .base_dense_head import BaseDenseHead


def flatten_levels(maps: Sequence[torch.Tensor], channels: int) -> torch.Tensor:
    """Per-level [B, A * channels, H, W] maps -> [B, sum(H * W * A), channels], in anchor order."""
    batch = maps[0].shape[0]
    return torch.cat([m.permute(0, 2, 3, 1).reshape(batch, -1, channels) for m in maps], dim=1)


class AnchorHead(BaseDenseHead):
    """Base of anchor-based heads.

    Args:
        num_classes: foreground classes (1 for a class-agnostic RPN).
        in_channels: channels of each input feature map.
        anchor_generator, bbox_coder, loss_cls, loss_bbox: built components (or config dicts).
        reg_decoded_bbox: regress boxes (for IoU-type losses) instead of deltas.
    The detector sets ``train_cfg`` (assigner, sampler, allowed_border, pos_weight) and
    ``test_cfg`` (nms_pre, score_thr, nms, max_per_img, min_bbox_size).
    """

    def __init__(self, num_classes: int, in_channels: int, anchor_generator, bbox_coder, loss_cls,
                 loss_bbox, feat_channels: int = 256, reg_decoded_bbox: bool = False,
                 train_cfg: Optional[dict] = None, test_cfg: Optional[dict] = None):
        super().__init__()
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.feat_channels = feat_channels
        self.anchor_generator = build_if_needed(anchor_generator)
        self.bbox_coder = build_if_needed(bbox_coder)
        self.loss_cls = build_if_needed(loss_cls)
        self.loss_bbox = build_if_needed(loss_bbox)
        self.use_sigmoid_cls = getattr(self.loss_cls, "use_sigmoid", False)
        self.cls_out_channels = num_classes if self.use_sigmoid_cls else num_classes + 1
        self.reg_decoded_bbox = reg_decoded_bbox
        self.num_base_anchors = self.anchor_generator.num_base_anchors[0]
        self.train_cfg: Optional[dict] = None
        self.test_cfg: Optional[dict] = None
        self.set_cfgs(train_cfg, test_cfg)
        self._init_layers()
        self.init_weights()

    # -- configuration -------------------------------------------------------------------------
    def set_cfgs(self, train_cfg: Optional[dict], test_cfg: Optional[dict]) -> None:
        if train_cfg is not None:
            train_cfg = dict(train_cfg)
            train_cfg["assigner"] = build_if_needed(train_cfg.get("assigner"))
            train_cfg["sampler"] = build_if_needed(train_cfg.get("sampler")) or PseudoSampler()
            self.train_cfg = train_cfg
        if test_cfg is not None:
            self.test_cfg = dict(test_cfg)

    @property
    def sampling(self) -> bool:
        return self.train_cfg is not None and not isinstance(self.train_cfg["sampler"], PseudoSampler)

    # -- layers --------------------------------------------------------------------------------
    def _init_layers(self) -> None:
        raise NotImplementedError

    def init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward_single(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def forward(self, feats: Sequence[torch.Tensor]) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """feats: per level [B, C, H, W] -> (cls_scores per level [B, A * cls_out, H, W],
        bbox_preds per level [B, A * 4, H, W])."""
        outs = [self.forward_single(x) for x in feats]
        return [o[0] for o in outs], [o[1] for o in outs]

    # -- anchors -------------------------------------------------------------------------------
    def anchors_of(self, cls_scores: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        featmap_sizes = [tuple(s.shape[-2:]) for s in cls_scores]
        return self.anchor_generator.grid_anchors(featmap_sizes, device=cls_scores[0].device)

    def priors_of(self, featmap_sizes: Sequence[Tuple[int, int]], device) -> List[torch.Tensor]:
        """Per level [H * W * A, 4] anchors (the priors of ``BaseDenseHead`` post-processing)."""
        return self.anchor_generator.grid_anchors(featmap_sizes, device=device)

    # -- training ------------------------------------------------------------------------------
    def _targets_single(self, anchors: torch.Tensor, valid: torch.Tensor, gt_bboxes: torch.Tensor,
                        gt_bboxes_ignore: Optional[torch.Tensor], gt_labels: Optional[torch.Tensor],
                        img_meta: dict):
        cfg = self.train_cfg
        inside = valid
        allowed_border = cfg.get("allowed_border", -1)
        if allowed_border >= 0:
            h, w = img_meta["img_shape"][:2]
            inside = valid & (anchors[:, 0] >= -allowed_border) & (anchors[:, 1] >= -allowed_border) \
                & (anchors[:, 2] < w + allowed_border) & (anchors[:, 3] < h + allowed_border)
        # Usually every anchor is inside: then skip the masked copies and the scatter back.
        inside_inds = None if bool(inside.all()) else torch.nonzero(inside, as_tuple=True)[0]
        inside_anchors = anchors if inside_inds is None else anchors[inside_inds]
        assign_result = cfg["assigner"].assign(inside_anchors, gt_bboxes, gt_bboxes_ignore,
                                               None if self.sampling else gt_labels)
        sample = cfg["sampler"].sample(assign_result, inside_anchors, gt_bboxes)

        num_inside = inside_anchors.shape[0]
        labels = anchors.new_full((num_inside,), self.num_classes, dtype=torch.long)
        label_weights = anchors.new_zeros((num_inside,))
        bbox_targets = anchors.new_zeros((num_inside, 4))
        bbox_weights = anchors.new_zeros((num_inside, 4))
        pos, neg = sample.pos_inds, sample.neg_inds
        if pos.numel() > 0:
            bbox_targets[pos] = (sample.pos_gt_bboxes if self.reg_decoded_bbox
                                 else self.bbox_coder.encode(sample.pos_bboxes, sample.pos_gt_bboxes))
            bbox_weights[pos] = 1.0
            labels[pos] = 0 if gt_labels is None else gt_labels[sample.pos_assigned_gt_inds]
            pos_weight = cfg.get("pos_weight", -1)
            label_weights[pos] = 1.0 if pos_weight <= 0 else pos_weight
        if neg.numel() > 0:
            label_weights[neg] = 1.0

        def unmap(values, fill):
            if inside_inds is None:
                return values
            out = values.new_full((anchors.shape[0],) + values.shape[1:], fill)
            out[inside_inds] = values
            return out

        return (unmap(labels, self.num_classes), unmap(label_weights, 0), unmap(bbox_targets, 0),
                unmap(bbox_weights, 0), pos.numel(), neg.numel())

    def get_targets(self, anchors: torch.Tensor, img_metas: List[dict], gt_bboxes: List[torch.Tensor],
                    gt_labels: Optional[List[torch.Tensor]], gt_bboxes_ignore: Optional[List[torch.Tensor]],
                    featmap_sizes: List[Tuple[int, int]]):
        """anchors [N, 4] (all levels) -> labels [B, N], label_weights [B, N],
        bbox_targets [B, N, 4], bbox_weights [B, N, 4], num_pos, num_neg.

        num_pos / num_neg are summed over images counting at least 1 per image, as the
        reference's ``SamplingResult.num_pos = max(len(pos_inds), 1)`` (and mmdet 2.x
        ``AnchorHead.get_targets``) does: they are the losses' ``avg_factor``, so an image
        without positives adds 1 rather than 0 to the divisor.
        """
        per_image = []
        for i, meta in enumerate(img_metas):
            valid = torch.cat(self.anchor_generator.valid_flags(featmap_sizes, meta["pad_shape"], anchors.device))
            per_image.append(self._targets_single(
                anchors, valid, gt_bboxes[i], None if gt_bboxes_ignore is None else gt_bboxes_ignore[i],
                None if gt_labels is None else gt_labels[i], meta))
        stacked = [torch.stack([p[k] for p in per_image]) for k in range(4)]
        return (*stacked, sum(max(p[4], 1) for p in per_image), sum(max(p[5], 1) for p in per_image))

    def loss(self, cls_scores: List[torch.Tensor], bbox_preds: List[torch.Tensor], gt_bboxes: List[torch.Tensor],
             gt_labels: Optional[List[torch.Tensor]], img_metas: List[dict],
             gt_bboxes_ignore: Optional[List[torch.Tensor]] = None) -> Dict[str, torch.Tensor]:
        featmap_sizes = [tuple(s.shape[-2:]) for s in cls_scores]
        anchors = torch.cat(self.anchors_of(cls_scores))
        labels, label_weights, bbox_targets, bbox_weights, num_pos, num_neg = self.get_targets(
            anchors, img_metas, gt_bboxes, gt_labels, gt_bboxes_ignore, featmap_sizes)
        num_samples = num_pos + num_neg if self.sampling else num_pos
        cls = flatten_levels(cls_scores, self.cls_out_channels).reshape(-1, self.cls_out_channels)
        reg = flatten_levels(bbox_preds, 4).reshape(-1, 4)
        loss_cls = self.loss_cls(cls, labels.reshape(-1), label_weights.reshape(-1), avg_factor=num_samples)
        if self.reg_decoded_bbox:
            batch_anchors = anchors[None].expand(len(img_metas), -1, -1).reshape(-1, 4)
            reg = self.bbox_coder.decode(batch_anchors, reg)
        loss_bbox = self.loss_bbox(reg, bbox_targets.reshape(-1, 4), bbox_weights.reshape(-1, 4),
                                   avg_factor=num_samples)
        return {"loss_cls": loss_cls, "loss_bbox": loss_bbox}
