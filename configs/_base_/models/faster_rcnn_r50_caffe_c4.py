"""Faster R-CNN C4 with a caffe-style ResNet-50: MMDetection 2.x
``configs/_base_/models/faster_rcnn_r50_caffe_c4.py``.

The backbone stops after stage 3 (``res4``: 1024 channels, stride 16; ``num_stages=3``, no
neck). The RPN runs on that one map with 15 anchors per position (scales 2..32 x stride 16 =
32..512 px, ratios 0.5/1/2). Each RoI is pooled at 14x14 from ``res4`` (RoIAlign,
``sampling_ratio=0``, aligned), the ``res5`` stage runs on it as the shared RoI head
(``roi_head.shared_head.layer4.*``: 2048 x 7 x 7), and ``BBoxHead(with_avg_pool=True)`` averages
it to a 2048-vector for ``fc_cls`` / ``fc_reg``. Proposals: 12000 -> 2000 in training,
6000 -> 1000 at test; RPN targets ignore anchors crossing the image border (allowed_border 0).
"""
from detzoo.models.backbones import ResNet
from detzoo.models.dense_heads import RPNHead
from detzoo.models.detectors import FasterRCNN
from detzoo.models.losses import CrossEntropyLoss, L1Loss
from detzoo.models.roi_heads import BBoxHead, ResLayer, SingleRoIExtractor, StandardRoIHead
from detzoo.models.task_modules import AnchorGenerator, DeltaXYWHBBoxCoder, MaxIoUAssigner, RandomSampler
from detzoo.ops import RoIAlign

norm_cfg = dict(type="BN", requires_grad=False)
model = dict(
    type=FasterRCNN,
    backbone=dict(
        type=ResNet,
        depth=50,
        num_stages=3,
        strides=(1, 2, 2),
        dilations=(1, 1, 1),
        out_indices=(2,),
        frozen_stages=1,
        norm_cfg=dict(norm_cfg),
        norm_eval=True,
        style="caffe",
        init_cfg=dict(type="Pretrained", checkpoint="open-mmlab://detectron2/resnet50_caffe"),
    ),
    neck=None,
    rpn_head=dict(
        type=RPNHead,
        in_channels=1024,
        feat_channels=1024,
        anchor_generator=dict(type=AnchorGenerator, scales=[2, 4, 8, 16, 32], ratios=[0.5, 1.0, 2.0], strides=[16]),
        bbox_coder=dict(type=DeltaXYWHBBoxCoder, target_means=[0.0, 0.0, 0.0, 0.0], target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(type=CrossEntropyLoss, use_sigmoid=True, loss_weight=1.0),
        loss_bbox=dict(type=L1Loss, loss_weight=1.0),
    ),
    roi_head=dict(
        type=StandardRoIHead,
        shared_head=dict(type=ResLayer, depth=50, stage=3, stride=2, dilation=1, style="caffe",
                         norm_cfg=dict(norm_cfg), norm_eval=True,
                         init_cfg=dict(type="Pretrained", checkpoint="open-mmlab://detectron2/resnet50_caffe")),  # its res5 from ImageNet too
        bbox_roi_extractor=dict(
            type=SingleRoIExtractor,
            roi_layer=dict(type=RoIAlign, output_size=14, sampling_ratio=0, aligned=True),
            out_channels=1024,
            featmap_strides=[16],
        ),
        bbox_head=dict(
            type=BBoxHead,
            with_avg_pool=True,
            roi_feat_size=7,
            in_channels=2048,
            num_classes=80,
            bbox_coder=dict(type=DeltaXYWHBBoxCoder, target_means=[0.0, 0.0, 0.0, 0.0], target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=False,
            loss_cls=dict(type=CrossEntropyLoss, use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type=L1Loss, loss_weight=1.0),
        ),
    ),
    train_cfg=dict(
        rpn=dict(
            assigner=dict(type=MaxIoUAssigner, pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3,
                          match_low_quality=True, ignore_iof_thr=-1),
            sampler=dict(type=RandomSampler, num=256, pos_fraction=0.5, neg_pos_ub=-1, add_gt_as_proposals=False),
            allowed_border=0,
            pos_weight=-1,
        ),
        rpn_proposal=dict(nms_pre=12000, max_per_img=2000, nms=dict(iou_threshold=0.7), min_bbox_size=0),
        rcnn=dict(
            assigner=dict(type=MaxIoUAssigner, pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5,
                          match_low_quality=False, ignore_iof_thr=-1),
            sampler=dict(type=RandomSampler, num=512, pos_fraction=0.25, neg_pos_ub=-1, add_gt_as_proposals=True),
            pos_weight=-1,
        ),
    ),
    test_cfg=dict(
        rpn=dict(nms_pre=6000, max_per_img=1000, nms=dict(iou_threshold=0.7), min_bbox_size=0),
        rcnn=dict(score_thr=0.05, nms=dict(iou_threshold=0.5), max_per_img=100),
    ),
)
