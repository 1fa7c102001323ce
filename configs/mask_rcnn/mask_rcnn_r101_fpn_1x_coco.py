"""Mask R-CNN, ResNet-101 FPN, 1x schedule on COCO (MMDetection box AP 40.0, mask AP 36.1)."""
from .mask_rcnn_r50_fpn_1x_coco import *  # noqa: F401,F403

model["backbone"]["depth"] = 101  # noqa: F405
model["backbone"]["init_cfg"] = dict(type="Pretrained", checkpoint="torchvision://resnet101")  # noqa: F405
