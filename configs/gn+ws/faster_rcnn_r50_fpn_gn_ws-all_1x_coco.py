"""Faster R-CNN, ResNet-50 FPN with GroupNorm + Weight Standardization everywhere, 1x on COCO
(MMDetection box AP 39.7; mmdet configs/gn+ws/faster_rcnn_r50_fpn_gn_ws-all_1x_coco.py).

Backbone, FPN and a 4-conv + 1-fc box head all use ConvWS convolutions followed by GN(32).
MMDetection initialises the backbone from ``open-mmlab://jhu/resnet50_gn_ws`` (pytorch-style
normalisation; ``model.backbone.init_cfg``).
"""
from detzoo.models.roi_heads import Shared4Conv1FCBBoxHead

from ..faster_rcnn.faster_rcnn_r50_fpn_1x_coco import *  # noqa: F401,F403

conv_cfg = dict(type="ConvWS")
norm_cfg = dict(type="GN", num_groups=32, requires_grad=True)
model["backbone"].update(conv_cfg=conv_cfg, norm_cfg=norm_cfg)  # noqa: F405
model["backbone"]["init_cfg"] = dict(type="Pretrained", checkpoint="open-mmlab://jhu/resnet50_gn_ws")  # noqa: F405
model["neck"].update(conv_cfg=conv_cfg, norm_cfg=norm_cfg)  # noqa: F405
model["roi_head"]["bbox_head"].update(  # noqa: F405
    type=Shared4Conv1FCBBoxHead, conv_out_channels=256, conv_cfg=conv_cfg, norm_cfg=norm_cfg)
