"""Faster R-CNN, ResNet-101 FPN with deformable conv v1 in stages c3-c5, 1x on COCO
(MMDetection box AP 42.7; mmdet configs/dcn/faster_rcnn_r101_fpn_dconv_c3-c5_1x_coco.py)."""
from ..faster_rcnn.faster_rcnn_r101_fpn_1x_coco import *  # noqa: F401,F403

model["backbone"].update(  # noqa: F405
    dcn=dict(type="DCN", deform_groups=1, fallback_on_stride=False),
    stage_with_dcn=(False, True, True, True))
