"""GFL (Generalized Focal Loss), ResNet-50 FPN, 1x on COCO (MMDetection box AP 40.2).

MMDetection 2.x configs/gfl/gfl_r50_fpn_1x_coco.py; key layout, train_cfg and test_cfg as the
mmdet 3.x record (shared/checkpoint-layouts/mmdet/gfl_r50_fpn_1x_coco.json). ATSS anchors and
assignment; the head predicts a joint class-quality score (Quality Focal Loss, beta 2) and a
17-bin distribution per box side (reg_max 16; Distribution Focal Loss weight 0.25) decoded by
its expectation (GIoU weight 2); class-wise NMS at IoU 0.6. SGD lr 0.01 for a batch of 16.
"""
from detzoo.models.backbones import ResNet
from detzoo.models.dense_heads.gfl_head import GFLHead
from detzoo.models.detectors.single_stage_variants import GFL
from detzoo.models.losses.gfocal_loss import DistributionFocalLoss, QualityFocalLoss
from detzoo.models.losses.iou_loss import GIoULoss
from detzoo.models.necks import FPN
from detzoo.models.task_modules import AnchorGenerator
from detzoo.models.task_modules.assigners.atss_assigner import ATSSAssigner

from .._base_.datasets.coco_detection import *  # noqa: F401,F403
from .._base_.default_runtime import *  # noqa: F401,F403
from .._base_.schedules.schedule_1x import *  # noqa: F401,F403

model = dict(
    type=GFL,
    backbone=dict(type=ResNet, depth=50, num_stages=4, out_indices=(0, 1, 2, 3), frozen_stages=1,
                  norm_cfg=dict(type="BN", requires_grad=True), norm_eval=True, style="pytorch",
                  init_cfg=dict(type="Pretrained", checkpoint="torchvision://resnet50")),
    neck=dict(type=FPN, in_channels=[256, 512, 1024, 2048], out_channels=256, start_level=1,
              add_extra_convs="on_output", num_outs=5),
    bbox_head=dict(
        type=GFLHead,
        num_classes=80,
        in_channels=256,
        stacked_convs=4,
        feat_channels=256,
        norm_cfg=dict(type="GN", num_groups=32, requires_grad=True),
        anchor_generator=dict(type=AnchorGenerator, ratios=[1.0], octave_base_scale=8, scales_per_octave=1,
                              strides=[8, 16, 32, 64, 128]),
        loss_cls=dict(type=QualityFocalLoss, use_sigmoid=True, beta=2.0, loss_weight=1.0),
        loss_dfl=dict(type=DistributionFocalLoss, loss_weight=0.25),
        reg_max=16,
        loss_bbox=dict(type=GIoULoss, loss_weight=2.0),
    ),
    train_cfg=dict(assigner=dict(type=ATSSAssigner, topk=9), allowed_border=-1, pos_weight=-1),
    test_cfg=dict(nms_pre=1000, min_bbox_size=0, score_thr=0.05, nms=dict(iou_threshold=0.6), max_per_img=100),
)

optimizer["lr"] = 0.01  # noqa: F405
