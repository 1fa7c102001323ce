"""YOLOv3 with a MobileNet-V1 backbone, 270 epochs on COCO: PaddleDetection's
yolov3_mobilenet_v1 row (box AP 29.3 / 29.3 / 27.1 tested at 608 / 416 / 320), built from
detzoo's modules; see configs/yolo/_base_/paddle_yolov3.py for what follows PaddleDetection and
what does not.

MobileNet-V1 (width 1.0) gives 256 / 512 / 1024 channels at strides 8 / 16 / 32: the outputs of
its 5th, 11th and 13th depthwise-separable blocks (Paddle feature_maps [4, 6, 13] count the
stride changes). Needs detzoo.models.backbones.mobilenet_v1.MobileNetV1.
"""
from detzoo.models.backbones.mobilenet_v1 import MobileNetV1

from .._base_.default_runtime import *  # noqa: F401,F403
from ._base_.coco_yolov3 import data, evaluation  # noqa: F401
from ._base_.paddle_yolov3 import *  # noqa: F401,F403
from ._base_.yolov3_d53 import model

model["backbone"] = dict(type=MobileNetV1, out_indices=(5, 11, 13), norm_eval=False)
model["neck"]["in_channels"] = [1024, 512, 256]
data["train"]["pipeline"] = train_pipeline  # noqa: F405
data["val"]["pipeline"] = data["test"]["pipeline"] = test_pipeline  # noqa: F405
