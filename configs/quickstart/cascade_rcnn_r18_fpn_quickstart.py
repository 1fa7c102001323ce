"""Cascade R-CNN on the generated shapes dataset, at the Faster R-CNN quickstart's schedule.

Everything but the second stage is the Faster R-CNN quickstart (same backbone, RPN, data and
optimiser schedule), so the two quickstarts compare the cascade itself: three class-agnostic box
heads at IoU 0.5 / 0.6 / 0.7 (MMDetection's Cascade R-CNN heads, 256-wide here) replace the single
head. The RPN keeps the quickstart's settings (L1 loss, anchors allowed across the border, 300
proposals) rather than Cascade R-CNN's COCO ones.
"""
import copy

from .._base_.models.cascade_rcnn_r50_fpn import model as _cascade_rcnn
from .faster_rcnn_r18_fpn_quickstart import *  # noqa: F401,F403
from .faster_rcnn_r18_fpn_quickstart import channels, classes, model

model = copy.deepcopy(model)
model["type"] = _cascade_rcnn["type"]
model["roi_head"] = copy.deepcopy(_cascade_rcnn["roi_head"])
model["roi_head"]["bbox_roi_extractor"]["out_channels"] = channels
for _head in model["roi_head"]["bbox_head"]:
    _head.update(in_channels=channels, fc_out_channels=256, num_classes=len(classes))
model["train_cfg"]["rcnn"] = copy.deepcopy(_cascade_rcnn["train_cfg"]["rcnn"])
for _stage in model["train_cfg"]["rcnn"]:
    _stage["sampler"]["num"] = 128
