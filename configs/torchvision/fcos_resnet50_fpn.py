"""torchvision ``fcos_resnet50_fpn`` (COCO_V1 weights, box AP 39.2) on detzoo.

ResNet-50 (FrozenBN; eps 1e-5: this builder does not overwrite it) + FPN on C3-C5 with P6/P7
from P5; head towers conv (with bias) + GroupNorm(32) + ReLU, box distances ReLU'd and scaled by
the level's anchor size, centre-ness on the regression tower; points at stride * i. Scores
sqrt(sigmoid(cls) * sigmoid(ctr)) > 0.2, top 1000 per level, NMS 0.6 per class, 100
detections. 91 sigmoid classes as torchvision (label = COCO category id). docs/torchvision.md.
"""
from detzoo.models.backbones import ResNet
from detzoo.models.detectors import FCOS
from detzoo.models.necks import FPN
from detzoo.models.torchvision_compat import TORCHVISION_COCO_CATEGORIES, TorchvisionFCOSHead

from .fasterrcnn_resnet50_fpn import data, evaluation, test_pipeline  # noqa: F401

model = dict(
    type=FCOS,
    class_names=TORCHVISION_COCO_CATEGORIES,
    backbone=dict(type=ResNet, depth=50, num_stages=4, out_indices=(1, 2, 3), frozen_stages=1,
                  norm_cfg=dict(type="FrozenBN", eps=1e-5, requires_grad=False), norm_eval=True,
                  style="pytorch"),
    neck=dict(type=FPN, in_channels=[512, 1024, 2048], out_channels=256, num_outs=5,
              add_extra_convs="on_output", relu_before_extra_convs=True),
    bbox_head=dict(type=TorchvisionFCOSHead, num_classes=91, in_channels=256, feat_channels=256,
                   stacked_convs=4, strides=(8, 16, 32, 64, 128)),
    # score_thresh 0.2, topk_candidates 1000, nms_thresh 0.6, detections_per_img 100
    test_cfg=dict(nms_pre=1000, score_thr=0.2, nms=dict(iou_threshold=0.6), max_per_img=100),
)
