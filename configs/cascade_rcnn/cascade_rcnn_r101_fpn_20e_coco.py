"""Cascade R-CNN, ResNet-101 FPN, 20-epoch schedule on COCO (MMDetection box AP 42.5)."""
from .cascade_rcnn_r50_fpn_20e_coco import *  # noqa: F401,F403

model["backbone"]["depth"] = 101  # noqa: F405
model["backbone"]["init_cfg"] = dict(type="Pretrained", checkpoint="torchvision://resnet101")  # noqa: F405
