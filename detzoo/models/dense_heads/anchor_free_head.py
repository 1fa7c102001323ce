"""Base of point-based (anchor-free) dense heads, MMDetection 3.x ``AnchorFreeHead``: a tower of
``stacked_convs`` 3x3 ConvModules per branch (``cls_convs.i``, ``reg_convs.i``), then 3x3
``conv_cls`` and ``conv_reg``; one prior per location, the cell-centre points of
:class:`MlvlPointGenerator`; boxes decoded from side distances by ``bbox_coder``
(``DistancePointBBoxCoder``). Test-time post-processing is ``BaseDenseHead``'s.
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from detzoo.errors import ConfigError
from ..build import build_if_needed
from ..layers import ConvModule
from ..task_modules.coders.distance_point import DistancePointBBoxCoder
from ..task_modules.prior_generators import MlvlPointGenerator
from .base_dense_head import BaseDenseHead
from ..layers.init import bias_init_with_prob




class AnchorFreeHead(BaseDenseHead):
    """Args:
        num_classes: foreground classes (sigmoid classification, no background channel).
        in_channels: channels of each input level; feat_channels: of the towers.
        stacked_convs: convs per tower; strides: of the input levels, in pixels.
        dcn_on_last_conv: the last conv of each tower is a modulated deformable conv (DCNv2).
        conv_bias: bias of the tower convs; "auto" = only without a norm layer.
        loss_cls, loss_bbox, bbox_coder: built components (or config dicts).
        conv_cfg, norm_cfg: of the tower ConvModules (e.g. ``dict(type="GN", num_groups=32)``).
    Weights start as the reference's init_cfg: every conv N(0, 0.01) with zero bias, and
    ``conv_cls`` bias at a 0.01 prior probability.
    """

    def __init__(self, num_classes: int, in_channels: int, feat_channels: int = 256, stacked_convs: int = 4,
                 strides: Sequence = (4, 8, 16, 32, 64), dcn_on_last_conv: bool = False,
                 conv_bias="auto", loss_cls=None, loss_bbox=None, bbox_coder=None,
                 conv_cfg: Optional[dict] = None, norm_cfg: Optional[dict] = None,
                 train_cfg: Optional[dict] = None, test_cfg: Optional[dict] = None):
        super().__init__()
        if conv_bias != "auto" and not isinstance(conv_bias, bool):
            raise ConfigError(f"{type(self).__name__}: conv_bias={conv_bias!r} must be 'auto', True or False")
        if loss_cls is None or loss_bbox is None:
            raise ConfigError(f"{type(self).__name__}: loss_cls and loss_bbox must be given")
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.feat_channels = feat_channels
        self.stacked_convs = stacked_convs
        self.strides = list(strides)
        self.dcn_on_last_conv = dcn_on_last_conv
        self.conv_bias = conv_bias
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.loss_cls = build_if_needed(loss_cls)
        self.loss_bbox = build_if_needed(loss_bbox)
        self.bbox_coder = build_if_needed(bbox_coder) if bbox_coder is not None else DistancePointBBoxCoder()
        self.use_sigmoid_cls = getattr(self.loss_cls, "use_sigmoid", False)
        if not self.use_sigmoid_cls:
            raise ConfigError(f"{type(self).__name__}: loss_cls must be a sigmoid loss (use_sigmoid=True)")
        self.cls_out_channels = num_classes
        self.prior_generator = MlvlPointGenerator(self.strides)
        self.train_cfg: Optional[dict] = None
        self.test_cfg: Optional[dict] = None
        self.set_cfgs(train_cfg, test_cfg)
        self._init_layers()
        self.init_weights()

    def set_cfgs(self, train_cfg: Optional[dict], test_cfg: Optional[dict]) -> None:
        if train_cfg is not None:
            self.train_cfg = dict(train_cfg)
        if test_cfg is not None:
            self.test_cfg = dict(test_cfg)

    # -- layers --------------------------------------------------------------------------------
    def _tower(self) -> nn.ModuleList:
        tower = nn.ModuleList()
        for i in range(self.stacked_convs):
            conv_cfg = dict(type="DCNv2") if self.dcn_on_last_conv and i == self.stacked_convs - 1 else self.conv_cfg
            tower.append(ConvModule(self.in_channels if i == 0 else self.feat_channels, self.feat_channels, 3,
                                    stride=1, padding=1, conv_cfg=conv_cfg, norm_cfg=self.norm_cfg,
                                    bias=self.conv_bias))
        return tower

    def _init_layers(self) -> None:
        self.cls_convs = self._tower()
        self.reg_convs = self._tower()
        self.conv_cls = nn.Conv2d(self.feat_channels, self.cls_out_channels, 3, padding=1)
        self.conv_reg = nn.Conv2d(self.feat_channels, 4, 3, padding=1)

    def init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.constant_(self.conv_cls.bias, bias_init_with_prob(0.01))

    def forward_single(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """x [B, C, H, W] -> (cls_score [B, num_classes, H, W], bbox_pred [B, 4, H, W],
        cls_feat, reg_feat): the raw predictions and the towers' outputs."""
        cls_feat = x
        for layer in self.cls_convs:
            cls_feat = layer(cls_feat)
        reg_feat = x
        for layer in self.reg_convs:
            reg_feat = layer(reg_feat)
        return self.conv_cls(cls_feat), self.conv_reg(reg_feat), cls_feat, reg_feat

    # -- priors --------------------------------------------------------------------------------
    def priors_of(self, featmap_sizes: Sequence[Tuple[int, int]], device) -> List[torch.Tensor]:
        """Per level [H * W, 2] points (x, y), the priors of ``BaseDenseHead`` post-processing."""
        return self.prior_generator.grid_priors(featmap_sizes, device=device)
