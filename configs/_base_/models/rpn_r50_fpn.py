"""RPN with a ResNet-50 FPN: MMDetection 2.x defaults (configs/_base_/models/rpn_r50_fpn.py).

Key layout and train/test settings match mmdet's rpn_r50_fpn_1x_coco checkpoint record
(shared/checkpoint-layouts/mmdet/rpn_r50_fpn_1x_coco.json). Unlike Faster R-CNN's test RPN
(nms_pre 1000), the stand-alone RPN keeps the top 2000 per level before NMS.
"""
from detzoo.models.backbones import ResNet
from detzoo.models.dense_heads import RPNHead
from detzoo.models.detectors.rpn import RPN
from detzoo.models.losses import CrossEntropyLoss, L1Loss
from detzoo.models.necks import FPN
from detzoo.models.task_modules import AnchorGenerator, DeltaXYWHBBoxCoder, MaxIoUAssigner, RandomSampler

model = dict(
    type=RPN,
    backbone=dict(
        type=ResNet,
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type="BN", requires_grad=True),
        norm_eval=True,
        style="pytorch",
    ),
    neck=dict(type=FPN, in_channels=[256, 512, 1024, 2048], out_channels=256, num_outs=5),
    rpn_head=dict(
        type=RPNHead,
        in_channels=256,
        feat_channels=256,
        anchor_generator=dict(type=AnchorGenerator, scales=[8], ratios=[0.5, 1.0, 2.0], strides=[4, 8, 16, 32, 64]),
        bbox_coder=dict(type=DeltaXYWHBBoxCoder, target_means=[0.0, 0.0, 0.0, 0.0], target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(type=CrossEntropyLoss, use_sigmoid=True, loss_weight=1.0),
        loss_bbox=dict(type=L1Loss, loss_weight=1.0),
    ),
    train_cfg=dict(
        rpn=dict(
            assigner=dict(type=MaxIoUAssigner, pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3,
                          match_low_quality=True, ignore_iof_thr=-1),
            sampler=dict(type=RandomSampler, num=256, pos_fraction=0.5, neg_pos_ub=-1, add_gt_as_proposals=False),
            allowed_border=-1,
            pos_weight=-1,
        ),
    ),
    test_cfg=dict(
        rpn=dict(nms_pre=2000, max_per_img=1000, nms=dict(iou_threshold=0.7), min_bbox_size=0),
    ),
)
