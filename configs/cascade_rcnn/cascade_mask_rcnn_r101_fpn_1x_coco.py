"""Cascade Mask R-CNN, ResNet-101 FPN, 1x schedule on COCO (MMDetection box AP 42.9, mask AP 37.3)."""
from .cascade_mask_rcnn_r50_fpn_1x_coco import *  # noqa: F401,F403

model["backbone"]["depth"] = 101  # noqa: F405
model["backbone"]["init_cfg"] = dict(type="Pretrained", checkpoint="torchvision://resnet101")  # noqa: F405
