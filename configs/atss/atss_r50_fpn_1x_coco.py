"""ATSS, ResNet-50 FPN, 1x on COCO (MMDetection box AP 39.4).

MMDetection 2.x configs/atss/atss_r50_fpn_1x_coco.py; key layout, train_cfg and test_cfg as the
mmdet 3.x record (shared/checkpoint-layouts/mmdet/atss_r50_fpn_1x_coco.json). One square anchor
of 8 x stride per location on strides 8..128 (FPN from C3, P6/P7 by convs on P5's output, no
ReLU); ATSS assignment with 9 candidates per level; GN head with centre-ness; GIoU (weight 2) on
decoded boxes; class-wise NMS at IoU 0.6. SGD lr 0.01 for a batch of 16.
"""
from detzoo.models.backbones import ResNet
from detzoo.models.dense_heads.atss_head import ATSSHead
from detzoo.models.detectors.single_stage_variants import ATSS
from detzoo.models.losses import CrossEntropyLoss, FocalLoss
from detzoo.models.losses.iou_loss import GIoULoss
from detzoo.models.necks import FPN
from detzoo.models.task_modules import AnchorGenerator, DeltaXYWHBBoxCoder
from detzoo.models.task_modules.assigners.atss_assigner import ATSSAssigner

from .._base_.datasets.coco_detection import *  # noqa: F401,F403
from .._base_.default_runtime import *  # noqa: F401,F403
from .._base_.schedules.schedule_1x import *  # noqa: F401,F403

model = dict(
    type=ATSS,
    backbone=dict(type=ResNet, depth=50, num_stages=4, out_indices=(0, 1, 2, 3), frozen_stages=1,
                  norm_cfg=dict(type="BN", requires_grad=True), norm_eval=True, style="pytorch",
                  init_cfg=dict(type="Pretrained", checkpoint="torchvision://resnet50")),
    neck=dict(type=FPN, in_channels=[256, 512, 1024, 2048], out_channels=256, start_level=1,
              add_extra_convs="on_output", num_outs=5),
    bbox_head=dict(
        type=ATSSHead,
        num_classes=80,
        in_channels=256,
        stacked_convs=4,
        feat_channels=256,
        norm_cfg=dict(type="GN", num_groups=32, requires_grad=True),
        anchor_generator=dict(type=AnchorGenerator, ratios=[1.0], octave_base_scale=8, scales_per_octave=1,
                              strides=[8, 16, 32, 64, 128]),
        bbox_coder=dict(type=DeltaXYWHBBoxCoder, target_means=[0.0, 0.0, 0.0, 0.0], target_stds=[0.1, 0.1, 0.2, 0.2]),
        loss_cls=dict(type=FocalLoss, use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
        loss_bbox=dict(type=GIoULoss, loss_weight=2.0),
        loss_centerness=dict(type=CrossEntropyLoss, use_sigmoid=True, loss_weight=1.0),
    ),
    train_cfg=dict(assigner=dict(type=ATSSAssigner, topk=9), allowed_border=-1, pos_weight=-1),
    test_cfg=dict(nms_pre=1000, min_bbox_size=0, score_thr=0.05, nms=dict(iou_threshold=0.6), max_per_img=100),
)

optimizer["lr"] = 0.01  # noqa: F405
