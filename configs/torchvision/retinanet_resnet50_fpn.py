"""torchvision ``retinanet_resnet50_fpn`` (COCO_V1 weights, box AP 36.4) on detzoo.

ResNet-50 (FrozenBN, eps 0.0 for these weights) + FPN on C3-C5 with P6/P7 from P5
(LastLevelP6P7: ``on_output``, ReLU before P7); anchors of sizes (x, int(x*2^(1/3)),
int(x*2^(2/3))) for x in 32..512, ratios 0.5/1/2, rounded; 91 sigmoid classes (label 0 is
'__background__' but is scored like any class, as in torchvision). Post-processing: per level
score > 0.05, top 1000, NMS 0.5 per class, 300 detections. docs/torchvision.md.
"""
from detzoo.models.backbones import ResNet
from detzoo.models.detectors import RetinaNet
from detzoo.models.losses import FocalLoss, L1Loss
from detzoo.models.necks import FPN
from detzoo.models.torchvision_compat import (TORCHVISION_COCO_CATEGORIES, TorchvisionAnchorGenerator,
                                              TorchvisionBoxCoder, TorchvisionRetinaHead)

from .fasterrcnn_resnet50_fpn import data, evaluation, test_pipeline  # noqa: F401

model = dict(
    type=RetinaNet,
    class_names=TORCHVISION_COCO_CATEGORIES,
    backbone=dict(type=ResNet, depth=50, num_stages=4, out_indices=(1, 2, 3), frozen_stages=1,
                  norm_cfg=dict(type="FrozenBN", eps=0.0, requires_grad=False), norm_eval=True,
                  style="pytorch"),
    neck=dict(type=FPN, in_channels=[512, 1024, 2048], out_channels=256, num_outs=5,
              add_extra_convs="on_output", relu_before_extra_convs=True),
    bbox_head=dict(
        type=TorchvisionRetinaHead,
        num_classes=91,
        in_channels=256,
        stacked_convs=4,
        feat_channels=256,
        anchor_generator=dict(
            type=TorchvisionAnchorGenerator,
            sizes=tuple((x, int(x * 2 ** (1.0 / 3)), int(x * 2 ** (2.0 / 3))) for x in [32, 64, 128, 256, 512]),
            aspect_ratios=(0.5, 1.0, 2.0), strides=[8, 16, 32, 64, 128]),
        bbox_coder=dict(type=TorchvisionBoxCoder, weights=(1.0, 1.0, 1.0, 1.0)),
        loss_cls=dict(type=FocalLoss, use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
        loss_bbox=dict(type=L1Loss, loss_weight=1.0),
    ),
    # score_thresh 0.05, topk_candidates 1000, nms_thresh 0.5, detections_per_img 300
    test_cfg=dict(nms_pre=1000, score_thr=0.05, nms=dict(iou_threshold=0.5), max_per_img=300),
)
