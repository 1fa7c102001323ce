"""What the PaddleDetection YOLOv3 rows share (seed: PaddleDetection model zoo, "Yolo v3" and
"Yolo v3 on Pascal VOC"), expressed with detzoo's MMDetection-style YOLOv3 modules.

Kept from PaddleDetection: the backbone, the 9 COCO anchors, ImageNet mean/std on RGB
(detzoo.data.norm_presets "paddle"), its augmentations (docs/augmentations.md, "YOLOv3 with
PaddleDetection's MixUp and multi-scale batches"): mixup, colour distortion, expand (up to 4x,
half of the time), SSD-style crop, a resize to 608 x 608 with a random interpolation, flip, and
every mini-batch reshaped to a random square of 320..608 (step 32); a test-time resize straight
to a square (aspect ratio not kept) with bicubic interpolation; SGD lr 1e-3 at a total batch of
64 for 270 epochs.
Not reproduced (see docs/yolov3.md): Paddle's loss (ignore_thresh 0.7 on predicted boxes, label
smoothing, mixup scores weighting the losses, mixup switched off for the last epochs) and its
NMS on cls x objectness > 0.01 -- MMDetection's GridAssigner, losses and test_cfg are used.
The published Paddle weights use Paddle parameter names and need a converter to load.

A config builds its training set as ``dict(type=MultiImageMixDataset, dataset=dict(<dataset>,
pipeline=load_pipeline), pipeline=train_pipeline)`` and adds ``batch_augments`` to ``data``.
"""
import torch

from detzoo.data.batch_augment import BatchRandomResize
from detzoo.data.norm_presets import get_norm_cfg
from detzoo.data.transforms import (Collect, DefaultFormatBundle, Expand, LoadAnnotations, LoadImageFromFile,
                                    MinIoURandomCrop, MixUp, MultiScaleFlipAug, Normalize, Pad,
                                    PhotoMetricDistortion, RandomFlip, RandomInterpResize, Resize)

img_norm_cfg = get_norm_cfg("paddle")
# the wrapped dataset only loads; MultiImageMixDataset runs train_pipeline (MixUp first)
load_pipeline = [
    dict(type=LoadImageFromFile, to_float32=True),
    dict(type=LoadAnnotations, with_bbox=True),
]
train_pipeline = [
    dict(type=MixUp, alpha=1.5, beta=1.5),
    dict(type=PhotoMetricDistortion),
    dict(type=Expand, mean=img_norm_cfg["mean"], to_rgb=img_norm_cfg["to_rgb"], ratio_range=(1, 4)),
    dict(type=MinIoURandomCrop, min_ious=(0.1, 0.3, 0.5, 0.7, 0.9), min_crop_size=0.3),
    dict(type=RandomInterpResize, img_scale=(608, 608), keep_ratio=False),
    dict(type=RandomFlip, flip_ratio=0.5),
    dict(type=Normalize, **img_norm_cfg),
    dict(type=Pad, size_divisor=32),
    dict(type=DefaultFormatBundle),
    dict(type=Collect, keys=["img", "gt_bboxes", "gt_labels"]),
]
batch_augments = [dict(type=BatchRandomResize, sizes=list(range(320, 609, 32)), interpolation="random")]
test_pipeline = [
    dict(type=LoadImageFromFile),
    dict(
        type=MultiScaleFlipAug,
        img_scale=(608, 608),
        flip=False,
        transforms=[
            dict(type=Resize, keep_ratio=False, interpolation="bicubic"),
            dict(type=RandomFlip),
            dict(type=Normalize, **img_norm_cfg),
            dict(type=Pad, size_divisor=32),
            dict(type=DefaultFormatBundle),
            dict(type=Collect, keys=["img"]),
        ],
    ),
]

# PaddleDetection's 270e schedule: momentum SGD, L2 5e-4, lr 1e-3 at 8 GPUs x 8 images, linear
# warm-up over 4000 iterations from ~0, lr x0.1 after epochs 216 and 243.
optimizer = dict(type=torch.optim.SGD, lr=0.001, momentum=0.9, weight_decay=0.0005)
optimizer_config = dict(grad_clip=None)
lr_config = dict(policy="step", warmup="linear", warmup_iters=4000, warmup_ratio=0.001, step=[216, 243])
runner = dict(type="EpochBasedRunner", max_epochs=270)
auto_scale_lr = dict(enable=True, base_batch_size=64)
