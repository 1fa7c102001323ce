"""Fast R-CNN with a ResNet-50 FPN: MMDetection 2.x defaults (configs/_base_/models/fast_rcnn_r50_fpn.py).

Faster R-CNN's backbone, neck and RoI head without the RPN: proposals come from a file.
"""
from detzoo.models.backbones import ResNet
from detzoo.models.detectors.fast_rcnn import FastRCNN
from detzoo.models.losses import CrossEntropyLoss, L1Loss
from detzoo.models.necks import FPN
from detzoo.models.roi_heads import Shared2FCBBoxHead, SingleRoIExtractor, StandardRoIHead
from detzoo.models.task_modules import DeltaXYWHBBoxCoder, MaxIoUAssigner, RandomSampler
from detzoo.ops import RoIAlign

model = dict(
    type=FastRCNN,
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
    roi_head=dict(
        type=StandardRoIHead,
        bbox_roi_extractor=dict(
            type=SingleRoIExtractor,
            roi_layer=dict(type=RoIAlign, output_size=7, sampling_ratio=0, aligned=True),
            out_channels=256,
            featmap_strides=[4, 8, 16, 32],
        ),
        bbox_head=dict(
            type=Shared2FCBBoxHead,
            in_channels=256,
            fc_out_channels=1024,
            roi_feat_size=7,
            num_classes=80,
            bbox_coder=dict(type=DeltaXYWHBBoxCoder, target_means=[0.0, 0.0, 0.0, 0.0], target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=False,
            loss_cls=dict(type=CrossEntropyLoss, use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type=L1Loss, loss_weight=1.0),
        ),
    ),
    train_cfg=dict(
        rcnn=dict(
            assigner=dict(type=MaxIoUAssigner, pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5,
                          match_low_quality=False, ignore_iof_thr=-1),
            sampler=dict(type=RandomSampler, num=512, pos_fraction=0.25, neg_pos_ub=-1, add_gt_as_proposals=True),
            pos_weight=-1,
        ),
    ),
    test_cfg=dict(
        rcnn=dict(score_thr=0.05, nms=dict(iou_threshold=0.5), max_per_img=100),
    ),
)
