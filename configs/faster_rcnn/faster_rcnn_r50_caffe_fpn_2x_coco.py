"""Faster R-CNN, caffe-style ResNet-50 FPN, 2x on COCO."""
from .faster_rcnn_r50_caffe_fpn_1x_coco import *  # noqa: F401,F403
from .._base_.schedules.schedule_2x import *  # noqa: F401,F403  (after: the schedule wins)
