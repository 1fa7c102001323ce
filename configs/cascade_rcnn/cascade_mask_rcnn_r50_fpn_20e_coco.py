"""Cascade Mask R-CNN, ResNet-50 FPN, 20-epoch schedule on COCO (MMDetection box AP 41.9, mask AP 36.5)."""
from .._base_.datasets.coco_instance import *  # noqa: F401,F403
from .._base_.default_runtime import *  # noqa: F401,F403
from .._base_.models.cascade_mask_rcnn_r50_fpn import model  # noqa: F401
from .._base_.schedules.schedule_20e import *  # noqa: F401,F403

evaluation = dict(interval=1, metric=["bbox", "segm"])
