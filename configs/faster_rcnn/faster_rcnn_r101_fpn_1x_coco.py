"""Faster R-CNN, ResNet-101 FPN, 1x schedule on COCO (MMDetection box AP 39.4)."""
from .faster_rcnn_r50_fpn_1x_coco import *  # noqa: F401,F403

model["backbone"]["depth"] = 101
model["backbone"]["init_cfg"] = dict(type="Pretrained", checkpoint="torchvision://resnet101")  # noqa: F405
