"""Faster R-CNN, ResNeXt-101 64x4d FPN, 2x schedule on COCO (MMDetection box AP 41.6).

ImageNet backbone in MMDetection: ``open-mmlab://resnext101_64x4d`` (``model.backbone.init_cfg``).
"""
from detzoo.models.backbones import ResNeXt

from .faster_rcnn_r50_fpn_2x_coco import *  # noqa: F401,F403

model["backbone"].update(type=ResNeXt, depth=101, groups=64, base_width=4)  # noqa: F405
model["backbone"]["init_cfg"] = dict(type="Pretrained", checkpoint="open-mmlab://resnext101_64x4d")  # noqa: F405
