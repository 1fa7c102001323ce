"""Mask R-CNN C4, caffe-style ResNet-50 (res4 features, res5 RoI head shared by boxes and masks),
1x on COCO. MMDetection 2.x's config: Detectron's older caffe mean (102.9801, 115.9465, 122.7717)
and lr 0.01."""
from detzoo.data.transforms import Normalize

from .._base_.datasets.coco_instance import *  # noqa: F401,F403
from .._base_.default_runtime import *  # noqa: F401,F403
from .._base_.models.mask_rcnn_r50_caffe_c4 import model  # noqa: F401
from .._base_.schedules.schedule_1x import *  # noqa: F401,F403

img_norm_cfg = dict(mean=[102.9801, 115.9465, 122.7717], std=[1.0, 1.0, 1.0], to_rgb=False)
for step in train_pipeline + test_pipeline[1]["transforms"]:  # noqa: F405
    if step["type"] is Normalize:
        step.update(img_norm_cfg)
optimizer["lr"] = 0.01  # noqa: F405
