"""PaddleDetection's faster_rcnn_r50_2x row (ResNet50 C4, box AP 37.1), in detzoo's modules.

What follows Paddle and what does not: configs/faster_rcnn/_base_/paddle_c4.py. Weights:
`detzoo convert faster_rcnn_r50_2x.tar faster_rcnn_r50_2x.pth --from paddle`.
"""
from .._base_.datasets.coco_detection import *  # noqa: F401,F403
from .._base_.default_runtime import *  # noqa: F401,F403
from .._base_.models.faster_rcnn_r50_caffe_c4 import model  # noqa: F401
from .._base_.schedules.schedule_2x import *  # noqa: F401,F403
from ..faster_rcnn._base_.paddle_c4 import to_paddle_c4

to_paddle_c4(model, data, depth=50, vd=False, with_mask=False)  # noqa: F405
