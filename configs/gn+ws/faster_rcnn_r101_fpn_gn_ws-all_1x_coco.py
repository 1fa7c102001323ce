"""Faster R-CNN, ResNet-101 FPN with GroupNorm + Weight Standardization everywhere, 1x on COCO
(MMDetection box AP 41.7; mmdet configs/gn+ws/faster_rcnn_r101_fpn_gn_ws-all_1x_coco.py).

The R-50 GN+WS config with depth 101 (written out: a config name with '-' cannot be imported).
MMDetection initialises the backbone from ``open-mmlab://jhu/resnet101_gn_ws`` (``model.backbone.init_cfg``).
Needs ``Shared4Conv1FCBBoxHead`` in detzoo.models.roi_heads.
"""
from detzoo.models.roi_heads import Shared4Conv1FCBBoxHead

from ..faster_rcnn.faster_rcnn_r101_fpn_1x_coco import *  # noqa: F401,F403

conv_cfg = dict(type="ConvWS")
norm_cfg = dict(type="GN", num_groups=32, requires_grad=True)
model["backbone"].update(conv_cfg=conv_cfg, norm_cfg=norm_cfg)  # noqa: F405
model["backbone"]["init_cfg"] = dict(type="Pretrained", checkpoint="open-mmlab://jhu/resnet101_gn_ws")  # noqa: F405
model["neck"].update(conv_cfg=conv_cfg, norm_cfg=norm_cfg)  # noqa: F405
model["roi_head"]["bbox_head"].update(  # noqa: F405
    type=Shared4Conv1FCBBoxHead, conv_out_channels=256, conv_cfg=conv_cfg, norm_cfg=norm_cfg)
