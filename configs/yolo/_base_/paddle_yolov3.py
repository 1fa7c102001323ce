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
smoothing, mixup scores weighting the losses, mixup switched off for the last epochs) --
MMDetection's GridAssigner and losses are used. Paddle's test path (``yolo_box`` straight into
original-image pixels, clipped to ``ori - 1``, objectness threshold 0.01, then ``multiclass_nms``
on obj x cls > 0.01 with +1 IoUs 0.45, 1000 per class, keep 100) is
``paddle_yolo_numerics(model)`` (detzoo.models.paddle_compat.PaddleYOLOV3Head); a config opts
in by calling it on its model.
The published Paddle weights use Paddle parameter names and need a converter to load.

A config builds its training set as ``dict(type=MultiImageMixDataset, dataset=dict(<dataset>,
pipeline=load_pipeline), pipeline=train_pipeline)`` and adds ``batch_augments`` to ``data``.
"""
import torch

from detzoo.models.dense_heads.yolo_head import YOLOV3Head
from detzoo.models.paddle_compat import PaddleYOLOV3Head

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


def paddle_yolo_numerics(model):
    """Switch a YOLOv3 model config (in place) to PaddleDetection's test-time post-processing
    (``PaddleYOLOV3Head``; YOLOv3Head defaults of static/ppdet/modeling/anchor_heads/yolo_head.py:
    MultiClassNMS score 0.01, nms_top_k 1000, keep_top_k 100, IoU 0.45, clip_bbox, scale_x_y 1)."""
    head = model["bbox_head"]
    if head.get("type") is YOLOV3Head:
        head["type"] = PaddleYOLOV3Head
    model["test_cfg"] = dict(conf_thr=0.01, score_thr=0.01, nms_top_k=1000, nms=dict(iou_threshold=0.45),
                             max_per_img=100, scale_x_y=1.0, clip_bbox=True)
    return model
