"""PaddleDetection's faster_rcnn_r101_vd_fpn_2x row (ResNet101-vd, box AP 40.8), in detzoo's modules.

What follows Paddle and what does not: configs/faster_rcnn/_base_/paddle_fpn.py. Weights:
`detzoo convert faster_rcnn_r101_vd_fpn_2x.tar faster_rcnn_r101_vd_fpn_2x.pth --from paddle`.
"""
from .._base_.datasets.coco_detection import *  # noqa: F401,F403
from .._base_.default_runtime import *  # noqa: F401,F403
from .._base_.models.faster_rcnn_r50_fpn import model  # noqa: F401
from .._base_.schedules.schedule_2x import *  # noqa: F401,F403
from ..faster_rcnn._base_.paddle_fpn import to_paddle

to_paddle(model, data, depth=101, vd=True, groups=None, with_mask=False)  # noqa: F405
