"""Mask R-CNN, caffe-style ResNet-101 FPN, 1x on COCO (MMDetection box AP 40.4, mask AP 36.4)."""
from .mask_rcnn_r50_caffe_fpn_1x_coco import *  # noqa: F401,F403

model["backbone"]["depth"] = 101  # noqa: F405
model["backbone"]["init_cfg"] = dict(type="Pretrained", checkpoint="open-mmlab://detectron2/resnet101_caffe")  # noqa: F405
