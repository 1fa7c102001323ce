"""RPN with a ResNet-50 FPN: MMDetection 2.x defaults (configs/_base_/models/rpn_r50_fpn.py).

Faster R-CNN's backbone, neck and RPN head with its RPN train/test settings, without the RoI
head. Key layout and settings match mmdet's rpn_r50_fpn_1x_coco checkpoint record
(shared/checkpoint-layouts/mmdet/rpn_r50_fpn_1x_coco.json). Unlike Faster R-CNN's test RPN
(nms_pre 1000), the stand-alone RPN keeps the top 2000 per level before NMS.
"""
import copy

from detzoo.models.detectors.rpn import RPN

from .faster_rcnn_r50_fpn import model as _faster_rcnn

_faster_rcnn = copy.deepcopy(_faster_rcnn)  # another base of the same config may import it too
model = dict(
    type=RPN,
    backbone=_faster_rcnn["backbone"],
    neck=_faster_rcnn["neck"],
    rpn_head=_faster_rcnn["rpn_head"],
    train_cfg=dict(rpn=_faster_rcnn["train_cfg"]["rpn"]),
    test_cfg=dict(rpn=dict(_faster_rcnn["test_cfg"]["rpn"], nms_pre=2000)),
)
