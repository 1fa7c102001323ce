"""Faster R-CNN, ResNeXt-101 32x4d FPN with deformable conv v1 (grouped, as mmdet) in stages
c3-c5, 1x on COCO (MMDetection box AP 44.5; mmdet
configs/dcn/faster_rcnn_x101_32x4d_fpn_dconv_c3-c5_1x_coco.py, backbone from
``open-mmlab://resnext101_32x4d``, set as in MMDetection)."""
from ..faster_rcnn.faster_rcnn_x101_32x4d_fpn_1x_coco import *  # noqa: F401,F403

model["backbone"].update(  # noqa: F405
    dcn=dict(type="DCN", deform_groups=1, fallback_on_stride=False),
    stage_with_dcn=(False, True, True, True))
