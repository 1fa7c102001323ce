"""COCO 2017 data for YOLOv3 (MMDetection 2.x configs/yolo/yolov3_d53_mstrain-608_273e_coco.py).

RGB scaled to [0, 1] (detzoo.data.norm_presets "yolo"). Training: photometric distortion,
zoom-out (Expand, up to 2x, filled with the mean = black), SSD-style MinIoURandomCrop, then a
keep-ratio resize whose long and short edge limits are drawn in [320, 608] ('range' mode),
flip, pad to 32. Test: keep-ratio resize into 608 x 608. Derived configs change
``train_scales`` / ``test_scale`` with :func:`set_scales`.
"""
from detzoo.data import CocoDataset
from detzoo.data.transforms import (Collect, DefaultFormatBundle, Expand, LoadAnnotations, LoadImageFromFile,
                                    MinIoURandomCrop, MultiScaleFlipAug, Normalize, Pad,
                                    PhotoMetricDistortion, RandomFlip, Resize)

dataset_type = CocoDataset
data_root = "data/coco/"
img_norm_cfg = dict(mean=[0.0, 0.0, 0.0], std=[255.0, 255.0, 255.0], to_rgb=True)
train_pipeline = [
    dict(type=LoadImageFromFile, to_float32=True),
    dict(type=LoadAnnotations, with_bbox=True),
    dict(type=PhotoMetricDistortion),
    dict(type=Expand, mean=img_norm_cfg["mean"], to_rgb=img_norm_cfg["to_rgb"], ratio_range=(1, 2)),
    dict(type=MinIoURandomCrop, min_ious=(0.4, 0.5, 0.6, 0.7, 0.8, 0.9), min_crop_size=0.3),
    dict(type=Resize, img_scale=[(320, 320), (608, 608)], keep_ratio=True),
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
        img_scale=(608, 608),
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
data = dict(
    samples_per_gpu=8,
    workers_per_gpu=4,
    train=dict(type=CocoDataset, ann_file=data_root + "annotations/instances_train2017.json",
               img_prefix=data_root + "train2017/", pipeline=train_pipeline),
    val=dict(type=CocoDataset, ann_file=data_root + "annotations/instances_val2017.json",
             img_prefix=data_root + "val2017/", pipeline=test_pipeline),
    test=dict(type=CocoDataset, ann_file=data_root + "annotations/instances_val2017.json",
              img_prefix=data_root + "val2017/", pipeline=test_pipeline),
)
evaluation = dict(interval=1, metric="bbox")


def set_scales(train_pipeline, test_pipeline, train_scales, test_scale):
    """Point the training Resize at ``train_scales`` (one (w, h) or a [low, high] range) and the
    test-time scale at ``test_scale`` (in place)."""
    for step in train_pipeline:
        if step["type"] is Resize:
            step["img_scale"] = train_scales
    for step in test_pipeline:
        if step["type"] is MultiScaleFlipAug:
            step["img_scale"] = test_scale
