"""RetinaNet, ResNet-50 FPN, 1x schedule on COCO (MMDetection box AP 36.5).

As mmdet's config: the 1x schedule with SGD lr 0.01 (not 0.02) for a total batch of 16.
"""
from .._base_.datasets.coco_detection import *  # noqa: F401,F403
from .._base_.default_runtime import *  # noqa: F401,F403
from .._base_.models.retinanet_r50_fpn import model  # noqa: F401
from .._base_.schedules.schedule_1x import *  # noqa: F401,F403

optimizer["lr"] = 0.01  # noqa: F405
