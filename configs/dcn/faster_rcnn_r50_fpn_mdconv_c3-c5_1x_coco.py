"""Faster R-CNN, ResNet-50 FPN with modulated deformable conv (DCNv2) in stages c3-c5, 1x on COCO
(MMDetection box AP 41.4; mmdet configs/dcn/faster_rcnn_r50_fpn_mdconv_c3-c5_1x_coco.py)."""
from ..faster_rcnn.faster_rcnn_r50_fpn_1x_coco import *  # noqa: F401,F403

model["backbone"].update(  # noqa: F405
    dcn=dict(type="DCNv2", deform_groups=1, fallback_on_stride=False),
    stage_with_dcn=(False, True, True, True))
