"""PaddleDetection's faster_rcnn_se154_vd_fpn_s1x row (SENet154-vd FPN, box AP 42.9), in detzoo's
modules.

What follows Paddle and what does not: configs/faster_rcnn/_base_/paddle_fpn.py; the SENet154-vd
backbone and the "s1x" schedule: configs/faster_rcnn/_base_/paddle_se154_s1x.py. Weights:
`detzoo convert faster_rcnn_se154_vd_fpn_s1x.tar faster_rcnn_se154_vd_fpn_s1x.pth --from paddle
--arch faster_rcnn_se154_vd_fpn`.
"""
from .._base_.datasets.coco_detection import *  # noqa: F401,F403
from .._base_.default_runtime import *  # noqa: F401,F403
from .._base_.models.faster_rcnn_r50_fpn import model  # noqa: F401
from ..faster_rcnn._base_.paddle_fpn import to_paddle
from ..faster_rcnn._base_.paddle_se154_s1x import *  # noqa: F401,F403 - the s1x schedule
from ..faster_rcnn._base_.paddle_se154_s1x import se154_backbone

to_paddle(model, data, depth=50, with_mask=False)  # noqa: F405
model["backbone"] = se154_backbone()
