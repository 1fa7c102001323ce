"""Faster R-CNN, ResNet-50 FPN on Pascal VOC 2007+2012 (MMDetection: 79.5 VOC2007-test mAP@0.5,
11-point; configs/pascal_voc/faster_rcnn_r50_fpn_1x_voc0712.py).

"1x" on VOC: 4 epochs over the 3x repeated training set (12 passes over the data), lr x0.1
after epoch 3 (pass 9), no warm-up; lr 0.01 for a total batch of 16 images.
"""
import torch

from .._base_.default_runtime import *  # noqa: F401,F403
from .._base_.datasets.voc0712 import *  # noqa: F401,F403  (after default_runtime: evaluation = mAP)
from .._base_.models.faster_rcnn_r50_fpn import model  # noqa: F401

model["roi_head"]["bbox_head"]["num_classes"] = 20

optimizer = dict(type=torch.optim.SGD, lr=0.01, momentum=0.9, weight_decay=0.0001)
optimizer_config = dict(grad_clip=None)
lr_config = dict(policy="step", step=[3])
runner = dict(type="EpochBasedRunner", max_epochs=4)  # x3 repeats = 12 passes over the data
auto_scale_lr = dict(enable=True, base_batch_size=16)
