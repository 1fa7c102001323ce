"""RPN, ResNet-50 FPN, 2x schedule on COCO (MMDetection AR@1000 58.6)."""
from .rpn_r50_fpn_1x_coco import *  # noqa: F401,F403
from .._base_.schedules.schedule_2x import *  # noqa: F401,F403  (after: the schedule wins)
