"""PaddleDetection's mask_rcnn_se154_vd_fpn_s1x row (SENet154-vd FPN, box AP 44.0, mask AP 38.7),
in detzoo's modules.

Backbone and schedule as the Faster R-CNN row (configs/faster_rcnn/_base_/paddle_se154_s1x.py),
plus the mask head (configs/faster_rcnn/_base_/paddle_fpn.py says what follows Paddle). Weights:
`detzoo convert mask_rcnn_se154_vd_fpn_s1x.tar mask_rcnn_se154_vd_fpn_s1x.pth --from paddle
--arch mask_rcnn_se154_vd_fpn`.
"""
from .._base_.datasets.coco_instance import *  # noqa: F401,F403
from .._base_.default_runtime import *  # noqa: F401,F403
from .._base_.models.mask_rcnn_r50_fpn import model  # noqa: F401
from ..faster_rcnn._base_.paddle_fpn import to_paddle
from ..faster_rcnn._base_.paddle_se154_s1x import *  # noqa: F401,F403 - the s1x schedule
from ..faster_rcnn._base_.paddle_se154_s1x import se154_backbone

to_paddle(model, data, depth=50, with_mask=True)  # noqa: F405
model["backbone"] = se154_backbone()
