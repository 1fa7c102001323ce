"""Fast R-CNN, ResNet-50 FPN, 1x schedule on COCO, trained and tested on the proposals of
rpn_r50_fpn_1x_coco (write them first: docs/proposals.md)."""
from detzoo.data import CocoDataset
from detzoo.data.transforms import (Collect, DefaultFormatBundle, LoadAnnotations, LoadImageFromFile,
                                    LoadProposals, MultiScaleFlipAug, Normalize, Pad, RandomFlip, Resize)

from .._base_.datasets.coco_detection import data_root, img_norm_cfg
from .._base_.default_runtime import *  # noqa: F401,F403
from .._base_.models.fast_rcnn_r50_fpn import model  # noqa: F401
from .._base_.schedules.schedule_1x import *  # noqa: F401,F403

train_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=LoadProposals, num_max_proposals=2000),
    dict(type=LoadAnnotations, with_bbox=True),
    dict(type=Resize, img_scale=(1333, 800), keep_ratio=True),
    dict(type=RandomFlip, flip_ratio=0.5),
    dict(type=Normalize, **img_norm_cfg),
    dict(type=Pad, size_divisor=32),
    dict(type=DefaultFormatBundle),
    dict(type=Collect, keys=["img", "proposals", "gt_bboxes", "gt_labels"]),
]
test_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=LoadProposals, num_max_proposals=None),
    dict(
        type=MultiScaleFlipAug,
        img_scale=(1333, 800),
        flip=False,
        transforms=[
            dict(type=Resize, keep_ratio=True),
            dict(type=RandomFlip),
            dict(type=Normalize, **img_norm_cfg),
            dict(type=Pad, size_divisor=32),
            dict(type=DefaultFormatBundle),  # img and proposals to tensors
            dict(type=Collect, keys=["img", "proposals"]),
        ],
    ),
]
data = dict(
    samples_per_gpu=2,
    workers_per_gpu=2,
    train=dict(type=CocoDataset, ann_file=data_root + "annotations/instances_train2017.json",
               img_prefix=data_root + "train2017/", pipeline=train_pipeline,
               proposal_file=data_root + "proposals/rpn_r50_fpn_1x_train2017.pkl"),
    val=dict(type=CocoDataset, ann_file=data_root + "annotations/instances_val2017.json",
             img_prefix=data_root + "val2017/", pipeline=test_pipeline,
             proposal_file=data_root + "proposals/rpn_r50_fpn_1x_val2017.pkl"),
    test=dict(type=CocoDataset, ann_file=data_root + "annotations/instances_val2017.json",
              img_prefix=data_root + "val2017/", pipeline=test_pipeline,
              proposal_file=data_root + "proposals/rpn_r50_fpn_1x_val2017.pkl"),
)
evaluation = dict(interval=1, metric="bbox")
