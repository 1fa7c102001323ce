"""Mask R-CNN, caffe-style ResNet-50 FPN, 1x on COCO with MMDetection v1 settings
(MMDetection 2.x configs/mask_rcnn/mask_rcnn_r50_caffe_fpn_poly_1x_coco_v1.py): masks stay polygons
until their targets are cropped, RoIAlign without the half-pixel shift and 2 samples per bin,
smooth-L1 box losses."""
from detzoo.data.transforms import LoadAnnotations
from detzoo.models.losses import SmoothL1Loss

from .mask_rcnn_r50_caffe_fpn_1x_coco import *  # noqa: F401,F403

model["rpn_head"]["loss_bbox"] = dict(type=SmoothL1Loss, beta=1.0 / 9.0, loss_weight=1.0)  # noqa: F405
roi_head = model["roi_head"]  # noqa: F405
for extractor in (roi_head["bbox_roi_extractor"], roi_head["mask_roi_extractor"]):
    extractor["roi_layer"].update(sampling_ratio=2, aligned=False)
roi_head["bbox_head"]["loss_bbox"] = dict(type=SmoothL1Loss, beta=1.0, loss_weight=1.0)
for step in train_pipeline:  # noqa: F405
    if step["type"] is LoadAnnotations:
        step.update(poly2mask=False)
del roi_head
