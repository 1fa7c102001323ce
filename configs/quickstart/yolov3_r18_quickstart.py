"""A YOLOv3 with a half-width ResNet-18 trained from scratch on the generated shapes dataset.

For `detzoo quickstart --config yolov3_r18_quickstart` (1200 generated training images of
240..320 px, 1..6 shapes of 12..160 px each, 4 classes):
  - ResNet-18 at half width (32 stem/base channels), outputs at strides 8 / 16 / 32
    (64 / 128 / 256 channels); BN trains (no ImageNet weights to keep).
  - a YOLOv3 neck and head at a quarter of Darknet-53's widths (neck 128 / 64 / 32, head bridge
    256 / 128 / 64 channels).
  - 9 square anchors (the shapes' boxes are close to square) spaced by sqrt(2) from 10 to
    160 px, three per level: 10-20 px on stride 8, 28-57 on stride 16, 80-160 on stride 32.
  - MMDetection's YOLOv3 assignment, losses (summed, not averaged) and test settings.
  - images resized to fit 320 x 320 (keep ratio), random flip; batches of 4; no loader worker.
  - AdamW, peak lr 2e-3, a linear warm-up and a per-iteration cosine decay, so `--epochs`
    rescales the whole schedule; the gradient norm is clipped at 35 as MMDetection's YOLOv3 does.
  - 12 epochs: YOLOv3 learns slowly from scratch. Measured (seed 0, 2 cores): 5 epochs at lr
    1.5e-3 gave bbox mAP 0.241; 12 epochs at 2e-3 gave 0.566 (mAP_50 0.768) in 578 s.
"""
from detzoo.data.transforms import (Collect, DefaultFormatBundle, LoadAnnotations, LoadImageFromFile,
                                    MultiScaleFlipAug, Normalize, Pad, RandomFlip, Resize)
from detzoo.models.backbones import ResNet
from detzoo.models.task_modules import YOLOAnchorGenerator

from .._base_.datasets.shapes_quickstart import classes, data_root, shapes_data  # noqa: F401
from .._base_.default_runtime import *  # noqa: F401,F403
from .._base_.schedules.quickstart_adamw import *  # noqa: F401,F403
from ..yolo._base_.yolov3_d53 import model


model["backbone"] = dict(type=ResNet, depth=18, stem_channels=32, base_channels=32, out_indices=(1, 2, 3),
                         frozen_stages=-1, norm_eval=False, style="pytorch",
                         init_cfg=None)  # trained from scratch: no ImageNet weights for this narrow ResNet-18
model["neck"].update(in_channels=[256, 128, 64], out_channels=[128, 64, 32])
_sizes = [10 * 2 ** (i / 2) for i in range(9)]  # 10, 14.1, 20, ..., 160
model["bbox_head"].update(
    num_classes=len(classes),
    in_channels=[128, 64, 32],
    out_channels=[256, 128, 64],
    anchor_generator=dict(type=YOLOAnchorGenerator, strides=[32, 16, 8],
                          base_sizes=[[(s, s) for s in _sizes[6:9]], [(s, s) for s in _sizes[3:6]],
                                      [(s, s) for s in _sizes[0:3]]]),
)

img_norm_cfg = dict(mean=[0.0, 0.0, 0.0], std=[255.0, 255.0, 255.0], to_rgb=True)
img_scale = (320, 320)
train_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=LoadAnnotations, with_bbox=True),
    dict(type=Resize, img_scale=img_scale, keep_ratio=True),
    dict(type=RandomFlip, flip_ratio=0.5),
    dict(type=Normalize, **img_norm_cfg),
    dict(type=Pad, size_divisor=32),
    dict(type=DefaultFormatBundle),
    dict(type=Collect, keys=["img", "gt_bboxes", "gt_labels"]),
]
test_pipeline = [
    dict(type=LoadImageFromFile),
    dict(
        type=MultiScaleFlipAug,
        img_scale=img_scale,
        flip=False,
        transforms=[
            dict(type=Resize, keep_ratio=True),
            dict(type=RandomFlip),
            dict(type=Normalize, **img_norm_cfg),
            dict(type=Pad, size_divisor=32),
            dict(type=DefaultFormatBundle),
            dict(type=Collect, keys=["img"]),
        ],
    ),
]

data = shapes_data(train_pipeline, test_pipeline)

max_epochs = 12
runner["max_epochs"] = evaluation["interval"] = max_epochs  # noqa: F405
optimizer["lr"] = 0.002  # noqa: F405
optimizer_config["grad_clip"]["max_norm"] = 35  # noqa: F405
auto_scale_lr["base_batch_size"] = 4  # noqa: F405
