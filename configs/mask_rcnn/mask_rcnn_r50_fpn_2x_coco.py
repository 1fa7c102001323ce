"""Mask R-CNN, ResNet-50 FPN, 2x schedule on COCO (MMDetection box AP 39.2, mask AP 35.4)."""
from .._base_.datasets.coco_instance import *  # noqa: F401,F403
from .._base_.default_runtime import *  # noqa: F401,F403
from .._base_.models.mask_rcnn_r50_fpn import model  # noqa: F401
from .._base_.schedules.schedule_2x import *  # noqa: F401,F403

evaluation = dict(interval=1, metric=["bbox", "segm"])
