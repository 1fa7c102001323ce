"""COCO 2017 detection: train2017 for training, val2017 for validation and test."""
from detzoo.data import CocoDataset
from detzoo.data.transforms import (Collect, DefaultFormatBundle, LoadAnnotations, LoadImageFromFile,
                                    MultiScaleFlipAug, Normalize, Pad, RandomFlip, Resize)

dataset_type = CocoDataset
data_root = "data/coco/"
# pytorch-style backbones: RGB, ImageNet mean/std (detzoo.data.norm_presets "pytorch")
img_norm_cfg = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
train_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=LoadAnnotations, with_bbox=True),
    dict(type=Resize, img_scale=(1333, 800), keep_ratio=True),
    dict(type=RandomFlip, flip_ratio=0.5),
    dict(type=Normalize, **img_norm_cfg),
    dict(type=Pad, size_divisor=32),
    dict(type=DefaultFormatBundle),
    dict(type=Collect, keys=["img", "gt_bboxes", "gt_labels", "gt_bboxes_ignore"]),
]
test_pipeline = [
    dict(type=LoadImageFromFile),
    dict(
        type=MultiScaleFlipAug,
        img_scale=(1333, 800),
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
    samples_per_gpu=2,
    workers_per_gpu=2,
    train=dict(type=CocoDataset, ann_file=data_root + "annotations/instances_train2017.json",
               img_prefix=data_root + "train2017/", pipeline=train_pipeline),
    val=dict(type=CocoDataset, ann_file=data_root + "annotations/instances_val2017.json",
             img_prefix=data_root + "val2017/", pipeline=test_pipeline),
    test=dict(type=CocoDataset, ann_file=data_root + "annotations/instances_val2017.json",
              img_prefix=data_root + "val2017/", pipeline=test_pipeline),
)
evaluation = dict(interval=1, metric="bbox")
