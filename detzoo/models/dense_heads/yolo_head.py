"""The YOLOv3 head with MMDetection 3.x numerics (mmdet/models/dense_heads/yolo_head.py).

Per level i: ``convs_bridge.i`` (3x3 ConvModule, BN, LeakyReLU 0.1) then ``convs_pred.i``
(1x1 conv, bias) predicting A * (5 + C) channels: for anchor a the channels
``a * (5 + C) + k`` hold k = 0, 1 (tx, ty logits), 2, 3 (tw, th), 4 (objectness logit),
5.. (one sigmoid logit per class, no background).

Training (``loss``): anchors of all levels are matched per image by :class:`GridAssigner`
(only anchors of cells holding a ground-truth centre can be positive); positives get
(tx, ty, tw, th) targets from :class:`YOLOBBoxCoder`, objectness 1 and a one-hot class;
anchors assigned 0 are negatives for the objectness loss only; ignored anchors (-1) add nothing.
Losses per level, summed over levels: BCE on classes (positives), BCE on objectness (positives
and negatives), BCE on the sigmoid xy targets (positives), MSE on wh (positives); each reduced
as its loss module says (YOLOv3 configs: 'sum', weights 1, 1, 2, 2 -- no normalisation).

Test (``predict_by_feat``), what differs from :class:`BaseDenseHead`'s per-level routine:
all levels are flattened first; anchors with sigmoid(objectness) < ``conf_thr`` are dropped
(only when conf_thr > 0); then ``filter_scores_and_topk`` on the *class* sigmoid scores of all
levels together (score > score_thr, best nms_pre pairs); the boxes are decoded with the stride
of each anchor's level and never clipped to the image; finally the shared
``bbox_post_process`` rescales, multiplies the class score by the objectness (score factor),
drops boxes not wider/taller than ``min_bbox_size``, runs class-wise NMS and keeps max_per_img.
"""
from __future__ import annotations

import math
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from detzoo.errors import ConfigError
from detzoo.structures import DetResult
from ..build import build_if_needed
from ..layers import ConvModule
from ..losses import CrossEntropyLoss
from ..losses.reduction import weight_reduce_loss
from ..task_modules import PseudoSampler, YOLOAnchorGenerator, YOLOBBoxCoder
from .anchor_head import flatten_levels
from .base_dense_head import BaseDenseHead, filter_scores_and_topk
from ..layers.init import bias_init_with_prob
from ..losses import MSELoss

__all__ = ["MSELoss", "YOLOV3Head"]

_LEAKY = dict(type="LeakyReLU", negative_slope=0.1)



def _default_anchor_generator() -> YOLOAnchorGenerator:
    return YOLOAnchorGenerator(strides=[32, 16, 8],
                               base_sizes=[[(116, 90), (156, 198), (373, 326)],
                                           [(30, 61), (62, 45), (59, 119)],
                                           [(10, 13), (16, 30), (33, 23)]])


def _built(component, make_default):
    return make_default() if component is None else build_if_needed(component)


class YOLOV3Head(BaseDenseHead):
    """Args (MMDetection's, same defaults):
        num_classes: object classes (no background).
        in_channels / out_channels: per level, coarsest first: the neck's channels and the
            bridge conv's output channels (YOLOv3: [512, 256, 128] / [1024, 512, 256]).
        anchor_generator, bbox_coder: built objects or config dicts (default: the 9 COCO
            anchors on strides 32/16/8, :class:`YOLOBBoxCoder`).
        featmap_strides: stride per level, same order as in_channels.
        one_hot_smoother: label smoothing of the class targets (0 = off).
        loss_cls, loss_conf, loss_xy, loss_wh: loss modules or config dicts.
        train_cfg: ``dict(assigner=GridAssigner(...))`` (a sampler, if given, must be a
            PseudoSampler: YOLOv3 trains on every assigned anchor).
        test_cfg: nms_pre, min_bbox_size, score_thr, conf_thr, nms=dict(iou_threshold), max_per_img.
    """

    def __init__(self, num_classes: int, in_channels: Sequence[int],
                 out_channels: Sequence[int] = (1024, 512, 256), anchor_generator=None, bbox_coder=None,
                 featmap_strides: Sequence[int] = (32, 16, 8), one_hot_smoother: float = 0.0,
                 conv_cfg: Optional[dict] = None, norm_cfg: dict = dict(type="BN", requires_grad=True),
                 act_cfg: dict = _LEAKY, loss_cls=None, loss_conf=None, loss_xy=None, loss_wh=None,
                 train_cfg: Optional[dict] = None, test_cfg: Optional[dict] = None):
        super().__init__()
        if not len(in_channels) == len(out_channels) == len(featmap_strides):
            raise ConfigError(f"YOLOV3Head: in_channels={list(in_channels)}, out_channels="
                              f"{list(out_channels)} and featmap_strides={list(featmap_strides)} "
                              "must have one entry per level")
        self.num_classes = num_classes
        self.in_channels = list(in_channels)
        self.out_channels = list(out_channels)
        self.featmap_strides = list(featmap_strides)
        self.one_hot_smoother = one_hot_smoother
        self.prior_generator = _built(anchor_generator, _default_anchor_generator)
        self.bbox_coder = _built(bbox_coder, YOLOBBoxCoder)
        self.loss_cls = _built(loss_cls, lambda: CrossEntropyLoss(use_sigmoid=True, loss_weight=1.0))
        self.loss_conf = _built(loss_conf, lambda: CrossEntropyLoss(use_sigmoid=True, loss_weight=1.0))
        self.loss_xy = _built(loss_xy, lambda: CrossEntropyLoss(use_sigmoid=True, loss_weight=1.0))
        self.loss_wh = _built(loss_wh, lambda: MSELoss(loss_weight=1.0))
        num_priors = self.prior_generator.num_base_anchors
        if len(num_priors) != self.num_levels or len(set(num_priors)) != 1:
            raise ConfigError(f"YOLOV3Head: the anchor generator has {num_priors} anchors per level; "
                              f"expected the same number on each of {self.num_levels} levels")
        anchor_strides = [tuple(s) for s in self.prior_generator.strides]
        if anchor_strides != [(float(s), float(s)) for s in self.featmap_strides]:
            raise ConfigError(f"YOLOV3Head: featmap_strides={self.featmap_strides} differ from the anchor "
                              f"generator's strides {self.prior_generator.strides}")
        self.num_base_priors = num_priors[0]
        # what BaseDenseHead's shared post-processing reads
        self.cls_out_channels = num_classes
        self.use_sigmoid_cls = True
        self.train_cfg: Optional[dict] = None
        self.test_cfg: Optional[dict] = None
        self.set_cfgs(train_cfg, test_cfg)

        self.convs_bridge = nn.ModuleList()
        self.convs_pred = nn.ModuleList()
        for in_c, out_c in zip(self.in_channels, self.out_channels):
            self.convs_bridge.append(ConvModule(in_c, out_c, 3, padding=1, conv_cfg=conv_cfg,
                                                norm_cfg=norm_cfg, act_cfg=act_cfg))
            self.convs_pred.append(nn.Conv2d(out_c, self.num_base_priors * self.num_attrib, 1))
        self.init_weights()

    @property
    def num_levels(self) -> int:
        return len(self.featmap_strides)

    @property
    def num_attrib(self) -> int:
        """4 box values + objectness + one score per class."""
        return 5 + self.num_classes

    def set_cfgs(self, train_cfg: Optional[dict], test_cfg: Optional[dict]) -> None:
        if train_cfg is not None:
            train_cfg = dict(train_cfg)
            if train_cfg.get("assigner") is None:
                raise ConfigError("YOLOV3Head train_cfg needs an 'assigner' (GridAssigner)")
            train_cfg["assigner"] = build_if_needed(train_cfg["assigner"])
            sampler = build_if_needed(train_cfg.get("sampler"))
            if sampler is not None and not isinstance(sampler, PseudoSampler):
                raise ConfigError(f"YOLOV3Head train_cfg sampler {sampler!r}: only PseudoSampler (or "
                                  "none) is supported; YOLOv3 trains on every assigned anchor")
            self.train_cfg = train_cfg
        if test_cfg is not None:
            self.test_cfg = dict(test_cfg)

    def init_weights(self) -> None:
        """MMDetection 3.x: every conv N(0, 0.01), norms weight 1 / bias 0; the objectness bias
        from a prior of 8 objects per 608-px image's level grid, class biases from prior 0.01."""
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.normal_(m.weight, std=0.01)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
                elif isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.GroupNorm)) and m.weight is not None:
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)
            for conv_pred, stride in zip(self.convs_pred, self.featmap_strides):
                bias = conv_pred.bias.view(self.num_base_priors, self.num_attrib)
                bias[:, 4] = bias_init_with_prob(8 / (608 / stride) ** 2)
                bias[:, 5:] = bias_init_with_prob(0.01)

    def forward(self, feats: Sequence[torch.Tensor]) -> Tuple[List[torch.Tensor]]:
        """feats: per level (coarsest first) [B, in_channels[i], H, W] -> a 1-tuple holding the
        per-level prediction maps [B, A * (5 + C), H, W] (MMDetection returns the same shape)."""
        if len(feats) != self.num_levels:
            raise ValueError(f"YOLOV3Head expects {self.num_levels} feature maps, got {len(feats)}")
        return ([pred(bridge(x)) for x, bridge, pred in zip(feats, self.convs_bridge, self.convs_pred)],)

    # -- anchors -------------------------------------------------------------------------------
    def _flat_anchors(self, featmap_sizes, device) -> Tuple[torch.Tensor, torch.Tensor, List[int]]:
        """All levels' anchors [N, 4], each anchor's stride [N], anchors per level."""
        anchors = self.prior_generator.grid_anchors(featmap_sizes, device=device)
        counts = [a.shape[0] for a in anchors]
        strides = torch.cat([anchors[i].new_full((n,), float(s)) for i, (n, s)
                             in enumerate(zip(counts, self.featmap_strides))])
        return torch.cat(anchors), strides, counts

    # -- training ------------------------------------------------------------------------------
    def _targets_single(self, anchors: torch.Tensor, strides: torch.Tensor, responsible: torch.Tensor,
                        gt_bboxes: torch.Tensor, gt_labels: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """-> target map [N, 5 + C] (tx, ty, tw, th, objectness, class one-hot) and the negative
        mask [N] (float) of one image."""
        result = self.train_cfg["assigner"].assign(anchors, responsible, gt_bboxes, gt_labels)
        pos = torch.nonzero(result.gt_inds > 0, as_tuple=True)[0]
        target = anchors.new_zeros((anchors.shape[0], self.num_attrib))
        if pos.numel() > 0:
            matched = result.gt_inds[pos] - 1
            target[pos, :4] = self.bbox_coder.encode(anchors[pos], gt_bboxes[matched].to(anchors), strides[pos])
            target[pos, 4] = 1.0
            onehot = F.one_hot(gt_labels[matched].long(), self.num_classes).to(target)
            if self.one_hot_smoother != 0:
                onehot = onehot * (1 - self.one_hot_smoother) + self.one_hot_smoother / self.num_classes
            target[pos, 5:] = onehot
        return target, (result.gt_inds == 0).to(anchors.dtype)

    def get_targets(self, pred_maps: Sequence[torch.Tensor], gt_bboxes: List[torch.Tensor],
                    gt_labels: List[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor, List[int]]:
        """-> targets [B, N, 5 + C], negative masks [B, N], anchors per level."""
        featmap_sizes = [tuple(p.shape[-2:]) for p in pred_maps]
        device = pred_maps[0].device
        anchors, strides, counts = self._flat_anchors(featmap_sizes, device)
        targets, negatives = [], []
        for boxes, labels in zip(gt_bboxes, gt_labels):
            boxes = boxes.to(device)
            responsible = torch.cat(self.prior_generator.responsible_flags(featmap_sizes, boxes, device))
            target, negative = self._targets_single(anchors, strides, responsible, boxes, labels.to(device))
            targets.append(target)
            negatives.append(negative)
        return torch.stack(targets), torch.stack(negatives), counts

    def loss(self, pred_maps: List[torch.Tensor], gt_bboxes: List[torch.Tensor],
             gt_labels: List[torch.Tensor], img_metas: List[dict],
             gt_bboxes_ignore: Optional[List[torch.Tensor]] = None) -> Dict[str, torch.Tensor]:
        """pred_maps: per level [B, A * (5 + C), H, W]; gt_bboxes [n_i, 4] in the padded input's
        pixels; gt_labels [n_i]. ``gt_bboxes_ignore`` is accepted and unused (as MMDetection).
        Returns loss_cls, loss_conf, loss_xy, loss_wh, each summed over the levels."""
        if self.train_cfg is None:
            raise ConfigError("YOLOV3Head.loss needs a train_cfg with an assigner")
        targets, negatives, counts = self.get_targets(pred_maps, gt_bboxes, gt_labels)
        preds = flatten_levels(pred_maps, self.num_attrib)
        losses = {"loss_cls": [], "loss_conf": [], "loss_xy": [], "loss_wh": []}
        for pred, target, negative in zip(preds.split(counts, dim=1), targets.split(counts, dim=1),
                                          negatives.split(counts, dim=1)):
            pos_mask = target[..., 4]
            pos_and_neg = pos_mask + negative
            if bool((pos_and_neg > 1).any()):
                warnings.warn("YOLOV3Head: an anchor is both positive and negative")
                pos_and_neg = pos_and_neg.clamp(0.0, 1.0)
            pos_mask = pos_mask.unsqueeze(-1)
            losses["loss_cls"].append(self.loss_cls(pred[..., 5:], target[..., 5:], weight=pos_mask))
            losses["loss_conf"].append(self.loss_conf(pred[..., 4], target[..., 4], weight=pos_and_neg))
            losses["loss_xy"].append(self.loss_xy(pred[..., :2], target[..., :2], weight=pos_mask))
            losses["loss_wh"].append(self.loss_wh(pred[..., 2:4], target[..., 2:4], weight=pos_mask))
        return {name: torch.stack(values).sum() for name, values in losses.items()}

    # -- test ----------------------------------------------------------------------------------
    def predict(self, feats: Sequence[torch.Tensor], img_metas: List[dict],
                rescale: bool = True) -> List[DetResult]:
        (pred_maps,) = self(feats)
        return self.predict_by_feat(pred_maps, img_metas, rescale)

    def predict_by_feat(self, pred_maps: List[torch.Tensor], img_metas: List[dict],
                        rescale: bool = True) -> List[DetResult]:
        """pred_maps: per level [B, A * (5 + C), H, W] -> one DetResult per image (boxes in the
        original image's pixels when ``rescale``)."""
        if self.test_cfg is None:
            raise ConfigError("YOLOV3Head.predict needs a test_cfg (nms_pre, score_thr, conf_thr, nms, "
                              "max_per_img)")
        cfg = self.test_cfg
        featmap_sizes = [tuple(p.shape[-2:]) for p in pred_maps]
        anchors, strides, _ = self._flat_anchors(featmap_sizes, pred_maps[0].device)
        preds = flatten_levels(pred_maps, self.num_attrib).float()
        box_params = torch.cat([preds[..., :2].sigmoid(), preds[..., 2:4]], dim=-1)
        boxes = self.bbox_coder.decode(anchors[None], box_params, strides[None, :, None])
        objectness = preds[..., 4].sigmoid()
        cls_scores = preds[..., 5:].sigmoid()
        conf_thr = cfg.get("conf_thr", -1)
        score_thr, nms_pre = cfg.get("score_thr", 0.0), cfg.get("nms_pre", -1)
        results = []
        for img_boxes, img_scores, img_obj, meta in zip(boxes, cls_scores, objectness, img_metas):
            if conf_thr > 0:
                keep = img_obj >= conf_thr
                img_boxes, img_scores, img_obj = img_boxes[keep], img_scores[keep], img_obj[keep]
            scores, labels, rows = filter_scores_and_topk(img_scores, score_thr, nms_pre)
            results.append(self.bbox_post_process(img_boxes[rows], scores, labels, img_obj[rows], meta, rescale))
        return results
