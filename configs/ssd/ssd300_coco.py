"""SSD300 (VGG-16) on COCO: MMDetection's ssd300_coco (box AP 25.5).

As mmdet: the 2x schedule (24 epochs, lr x0.1 after 16 and 22, 500-iteration linear warm-up) over
COCO train2017 repeated 5 times per epoch (120 passes), SGD lr 2e-3 momentum 0.9 weight decay
5e-4 for a total batch of 64 (8 GPUs x 8), no gradient clipping. Training augmentation: Expand
(zoom out up to 4x, filled with the mean), MinIoURandomCrop, resize to 300x300 without keeping
the aspect ratio, flip, PhotoMetricDistortion. Normalisation: RGB, mean 123.675/116.28/103.53,
std 1 (norm preset "ssd"). No padding: the network sees 300x300 (see detzoo/models/detectors/ssd.py).
"""
import torch

from detzoo.data import CocoDataset, RepeatDataset
from detzoo.data.transforms import (Collect, DefaultFormatBundle, Expand, ImageToTensor,
                                    LoadAnnotations, LoadImageFromFile, MinIoURandomCrop,
                                    MultiScaleFlipAug, Normalize, PhotoMetricDistortion, RandomFlip,
                                    Resize)

from .._base_.datasets.coco_detection import data, data_root  # noqa: F401
from .._base_.default_runtime import *  # noqa: F401,F403
from .._base_.models.ssd300 import input_size, model  # noqa: F401
from .._base_.schedules.schedule_2x import *  # noqa: F401,F403

img_norm_cfg = dict(mean=[123.675, 116.28, 103.53], std=[1.0, 1.0, 1.0], to_rgb=True)
train_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=LoadAnnotations, with_bbox=True),
    dict(type=Expand, mean=img_norm_cfg["mean"], to_rgb=img_norm_cfg["to_rgb"], ratio_range=(1, 4)),
    dict(type=MinIoURandomCrop, min_ious=(0.1, 0.3, 0.5, 0.7, 0.9), min_crop_size=0.3),
    dict(type=Resize, img_scale=(input_size, input_size), keep_ratio=False),
    dict(type=RandomFlip, flip_ratio=0.5),
    dict(type=PhotoMetricDistortion, brightness_delta=32, contrast_range=(0.5, 1.5),
         saturation_range=(0.5, 1.5), hue_delta=18),
    dict(type=Normalize, **img_norm_cfg),
    dict(type=DefaultFormatBundle),
    dict(type=Collect, keys=["img", "gt_bboxes", "gt_labels"]),
]
test_pipeline = [
    dict(type=LoadImageFromFile),
    dict(
        type=MultiScaleFlipAug,
        img_scale=(input_size, input_size),
        flip=False,
        transforms=[
            dict(type=Resize, keep_ratio=False),
            dict(type=Normalize, **img_norm_cfg),
            dict(type=ImageToTensor, keys=["img"]),
            dict(type=Collect, keys=["img"]),
        ],
    ),
]
data["samples_per_gpu"] = 8
data["workers_per_gpu"] = 3
data["train"] = dict(
    type=RepeatDataset,
    times=5,
    dataset=dict(type=CocoDataset, ann_file=data_root + "annotations/instances_train2017.json",
                 img_prefix=data_root + "train2017/", pipeline=train_pipeline),
)
data["val"]["pipeline"] = test_pipeline
data["test"]["pipeline"] = test_pipeline

optimizer = dict(type=torch.optim.SGD, lr=2e-3, momentum=0.9, weight_decay=5e-4)
optimizer_config = dict(grad_clip=None)
auto_scale_lr = dict(enable=True, base_batch_size=64)
