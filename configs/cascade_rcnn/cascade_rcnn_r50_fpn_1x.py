"""PaddleDetection's cascade_rcnn_r50_fpn_1x row (box AP 40.9), in detzoo's modules.

What follows Paddle and what does not: configs/faster_rcnn/_base_/paddle_fpn.py. Weights:
`detzoo convert cascade_rcnn_r50_fpn_1x.tar cascade_rcnn_r50_fpn_1x.pth --from paddle`.
"""
from .._base_.datasets.coco_detection import *  # noqa: F401,F403
from .._base_.default_runtime import *  # noqa: F401,F403
from .._base_.models.cascade_rcnn_r50_fpn import model  # noqa: F401
from .._base_.schedules.schedule_1x import *  # noqa: F401,F403
from ..faster_rcnn._base_.paddle_fpn import to_paddle

to_paddle(model, data, depth=50, vd=False, groups=None, with_mask=False)  # noqa: F405
