"""Mask R-CNN, ResNet-50 FPN, 1x schedule on COCO (MMDetection box AP 38.2, mask AP 34.7)."""
from .._base_.datasets.coco_instance import *  # noqa: F401,F403
from .._base_.default_runtime import *  # noqa: F401,F403
from .._base_.models.mask_rcnn_r50_fpn import model  # noqa: F401
from .._base_.schedules.schedule_1x import *  # noqa: F401,F403

evaluation = dict(interval=1, metric=["bbox", "segm"])
