"""Cascade R-CNN, ResNet-50 FPN, 1x schedule on COCO (MMDetection box AP 40.3)."""
from .._base_.datasets.coco_detection import *  # noqa: F401,F403
from .._base_.default_runtime import *  # noqa: F401,F403
from .._base_.models.cascade_rcnn_r50_fpn import model  # noqa: F401
from .._base_.schedules.schedule_1x import *  # noqa: F401,F403
