"""Fast R-CNN with a ResNet-50 FPN: MMDetection 2.x defaults (configs/_base_/models/fast_rcnn_r50_fpn.py).

Faster R-CNN's backbone, neck and RoI head without the RPN: proposals come from a file.
"""
import copy

from detzoo.models.detectors.fast_rcnn import FastRCNN

from .faster_rcnn_r50_fpn import model as _faster_rcnn

_faster_rcnn = copy.deepcopy(_faster_rcnn)  # another base of the same config may import it too
model = dict(
    type=FastRCNN,
    backbone=_faster_rcnn["backbone"],
    neck=_faster_rcnn["neck"],
    roi_head=_faster_rcnn["roi_head"],
    train_cfg=dict(rcnn=_faster_rcnn["train_cfg"]["rcnn"]),
    test_cfg=dict(rcnn=_faster_rcnn["test_cfg"]["rcnn"]),
)
