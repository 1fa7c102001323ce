"""FCOS with a caffe-style ResNet-50 FPN and a GN head: MMDetection defaults
(configs/fcos/fcos_r50_caffe_fpn_gn-head_1x_coco.py, model part).

Key layout and test_cfg as the mmdet 3.x record
(shared/checkpoint-layouts/mmdet/fcos_r50-caffe_fpn_gn-head_1x_coco.json). The FPN starts at C3
and adds P6/P7 by stride-2 convs on P5's output, with a ReLU before P7; points at the cell
centres of strides 8..128, regress ranges 64/128/256/512 px. FCOS has no assigner (train_cfg
unused).
"""
from detzoo.models.backbones import ResNet
from detzoo.models.dense_heads.fcos_head import INF, FCOSHead
from detzoo.models.detectors.single_stage_variants import FCOS
from detzoo.models.losses import CrossEntropyLoss, FocalLoss
from detzoo.models.losses.iou_loss import IoULoss
from detzoo.models.necks import FPN

model = dict(
    type=FCOS,
    backbone=dict(type=ResNet, depth=50, num_stages=4, out_indices=(0, 1, 2, 3), frozen_stages=1,
                  norm_cfg=dict(type="BN", requires_grad=False), norm_eval=True, style="caffe",
                  init_cfg=dict(type="Pretrained", checkpoint="open-mmlab://detectron/resnet50_caffe")),
    neck=dict(type=FPN, in_channels=[256, 512, 1024, 2048], out_channels=256, start_level=1,
              add_extra_convs="on_output", num_outs=5, relu_before_extra_convs=True),
    bbox_head=dict(
        type=FCOSHead,
        num_classes=80,
        in_channels=256,
        stacked_convs=4,
        feat_channels=256,
        strides=[8, 16, 32, 64, 128],
        regress_ranges=((-1, 64), (64, 128), (128, 256), (256, 512), (512, INF)),
        norm_cfg=dict(type="GN", num_groups=32, requires_grad=True),
        loss_cls=dict(type=FocalLoss, use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
        loss_bbox=dict(type=IoULoss, loss_weight=1.0),
        loss_centerness=dict(type=CrossEntropyLoss, use_sigmoid=True, loss_weight=1.0),
    ),
    test_cfg=dict(nms_pre=1000, min_bbox_size=0, score_thr=0.05, nms=dict(iou_threshold=0.5), max_per_img=100),
)
