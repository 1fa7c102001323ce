"""RetinaNet head (Lin et al., 2017), MMDetection's ``RetinaHead`` layout and initialisation.

Keys: ``cls_convs.{i}.conv`` and ``reg_convs.{i}.conv`` (``stacked_convs`` 3x3 ConvModules with
ReLU, optionally a norm layer), ``retina_cls`` (3x3, A * num_classes, sigmoid, no background
channel) and ``retina_reg`` (3x3, A * 4). Anchors, targets, losses and test-time
post-processing are those of :class:`AnchorHead` / :class:`BaseDenseHead`.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
import torch.nn as nn

from detzoo.errors import ConfigError
from ..layers.conv_module import ConvModule
from .anchor_head import AnchorHead
from ..layers.init import bias_init_with_prob




class RetinaHead(AnchorHead):
    """Two towers of ``stacked_convs`` 3x3 convs (classification and regression) shared by all
    pyramid levels, then a 3x3 conv to ``A * num_classes`` logits and one to ``A * 4`` deltas.

    Args:
        num_classes: foreground classes (sigmoid classification, no background channel).
        in_channels: channels of each FPN level.
        stacked_convs: convs per tower (4 in RetinaNet).
        feat_channels: channels of the tower convs.
        conv_cfg, norm_cfg: passed to the tower ConvModules (None, None = plain conv + bias + ReLU).
        prior_prob: initial foreground probability of ``retina_cls`` (0.01).
        anchor_generator, bbox_coder, loss_cls, loss_bbox, train_cfg, test_cfg: see AnchorHead.
    Shapes: ``forward(feats)`` maps per-level ``[B, in_channels, H, W]`` to
    ``([B, A * num_classes, H, W] per level, [B, A * 4, H, W] per level)``.
    """

    def __init__(self, num_classes: int, in_channels: int, anchor_generator, bbox_coder, loss_cls, loss_bbox,
                 stacked_convs: int = 4, feat_channels: int = 256, conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None, prior_prob: float = 0.01, **kwargs):
        if not 0 < prior_prob < 1:
            raise ConfigError(f"RetinaHead prior_prob={prior_prob} must lie strictly between 0 and 1")
        self.stacked_convs = stacked_convs
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.prior_prob = prior_prob
        super().__init__(num_classes, in_channels, anchor_generator, bbox_coder, loss_cls, loss_bbox,
                         feat_channels=feat_channels, **kwargs)
        if not self.use_sigmoid_cls:
            raise ConfigError("RetinaHead: loss_cls must be a sigmoid loss (FocalLoss, use_sigmoid=True); "
                              "its retina_cls has no background channel")

    def _init_layers(self) -> None:
        self.cls_convs = nn.ModuleList()
        self.reg_convs = nn.ModuleList()
        channels = self.in_channels
        for _ in range(self.stacked_convs):
            for tower in (self.cls_convs, self.reg_convs):
                tower.append(ConvModule(channels, self.feat_channels, 3, padding=1, conv_cfg=self.conv_cfg,
                                        norm_cfg=self.norm_cfg))
            channels = self.feat_channels
        self.retina_cls = nn.Conv2d(channels, self.num_base_anchors * self.cls_out_channels, 3, padding=1)
        self.retina_reg = nn.Conv2d(channels, self.num_base_anchors * 4, 3, padding=1)

    def init_weights(self) -> None:
        # mmdet init_cfg: Normal(std=0.01) on every Conv2d, retina_cls bias from the prior
        super().init_weights()
        nn.init.constant_(self.retina_cls.bias, bias_init_with_prob(self.prior_prob))

    def forward_single(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        cls_feat, reg_feat = x, x
        for conv in self.cls_convs:
            cls_feat = conv(cls_feat)
        for conv in self.reg_convs:
            reg_feat = conv(reg_feat)
        return self.retina_cls(cls_feat), self.retina_reg(reg_feat)
