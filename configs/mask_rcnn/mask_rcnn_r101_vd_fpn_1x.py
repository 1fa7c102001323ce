"""PaddleDetection's mask_rcnn_r101_vd_fpn_1x row (ResNet101-vd, box AP 41.4, mask AP 36.8), in detzoo's modules.

What follows Paddle and what does not: configs/faster_rcnn/_base_/paddle_fpn.py. Weights:
`detzoo convert mask_rcnn_r101_vd_fpn_1x.tar mask_rcnn_r101_vd_fpn_1x.pth --from paddle`.
"""
from .._base_.datasets.coco_instance import *  # noqa: F401,F403
from .._base_.default_runtime import *  # noqa: F401,F403
from .._base_.models.mask_rcnn_r50_fpn import model  # noqa: F401
from .._base_.schedules.schedule_1x import *  # noqa: F401,F403
from ..faster_rcnn._base_.paddle_fpn import to_paddle

to_paddle(model, data, depth=101, vd=True, groups=None, with_mask=True)  # noqa: F405
