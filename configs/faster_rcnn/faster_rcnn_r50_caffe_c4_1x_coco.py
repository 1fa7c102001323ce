"""Faster R-CNN C4, caffe-style ResNet-50 (res4 features, res5 RoI head), 1x on COCO
(MMDetection box AP 35.6)."""
from detzoo.data.transforms import Normalize

from .._base_.datasets.coco_detection import *  # noqa: F401,F403
from .._base_.default_runtime import *  # noqa: F401,F403
from .._base_.models.faster_rcnn_r50_caffe_c4 import model  # noqa: F401
from .._base_.schedules.schedule_1x import *  # noqa: F401,F403

# caffe weights expect BGR, mean-subtracted, unscaled input (detzoo.data.norm_presets "caffe")
img_norm_cfg = dict(mean=[103.53, 116.28, 123.675], std=[1.0, 1.0, 1.0], to_rgb=False)
for step in train_pipeline + test_pipeline[1]["transforms"]:  # noqa: F405
    if step["type"] is Normalize:
        step.update(img_norm_cfg)
