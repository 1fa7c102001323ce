"""torchvision ``fasterrcnn_resnet50_fpn`` (COCO_V1 weights, box AP 37.0) on detzoo.

Load converted torchvision weights (``detzoo convert SRC DST --from torchvision``); the same
weights give torchvision's detections. Labels index torchvision's 91 COCO classes
('__background__' at 0, 'N/A' gaps): a label IS the COCO category id. docs/torchvision.md.
Inference only. Settings are the builder's defaults (torchvision 0.28 source).
"""
from detzoo.data import CocoDataset
from detzoo.data.transforms import Collect, DefaultFormatBundle, LoadImageFromFile, Pad
from detzoo.data.transforms.torchvision_transform import TorchvisionResizeNormalize
from detzoo.models.backbones import ResNet
from detzoo.models.detectors import FasterRCNN
from detzoo.models.losses import CrossEntropyLoss, L1Loss
from detzoo.models.necks import FPN
from detzoo.models.torchvision_compat import (TORCHVISION_COCO_CATEGORIES, TorchvisionAnchorGenerator,
                                              TorchvisionBBoxHead, TorchvisionBoxCoder, TorchvisionRoIExtractor,
                                              TorchvisionRoIHead, TorchvisionRPNHead)

model = dict(
    type=FasterRCNN,
    class_names=TORCHVISION_COCO_CATEGORIES,
    # FrozenBatchNorm2d; the builder sets eps 0.0 for the COCO_V1 weights (overwrite_eps)
    backbone=dict(type=ResNet, depth=50, num_stages=4, out_indices=(0, 1, 2, 3), frozen_stages=1,
                  norm_cfg=dict(type="FrozenBN", eps=0.0, requires_grad=False), norm_eval=True,
                  style="pytorch"),
    # FPN + LastLevelMaxPool (P6 = max_pool2d(P5, 1, 2))
    neck=dict(type=FPN, in_channels=[256, 512, 1024, 2048], out_channels=256, num_outs=5),
    rpn_head=dict(
        type=TorchvisionRPNHead,
        in_channels=256,
        feat_channels=256,
        anchor_generator=dict(type=TorchvisionAnchorGenerator, sizes=((32,), (64,), (128,), (256,), (512,)),
                              aspect_ratios=(0.5, 1.0, 2.0), strides=[4, 8, 16, 32, 64]),
        bbox_coder=dict(type=TorchvisionBoxCoder, weights=(1.0, 1.0, 1.0, 1.0)),
        loss_cls=dict(type=CrossEntropyLoss, use_sigmoid=True, loss_weight=1.0),
        loss_bbox=dict(type=L1Loss, loss_weight=1.0),
    ),
    roi_head=dict(
        type=TorchvisionRoIHead,
        bbox_roi_extractor=dict(
            type=TorchvisionRoIExtractor,  # MultiScaleRoIAlign(["0", "1", "2", "3"], 7, 2)
            roi_layer=dict(output_size=7, sampling_ratio=2, aligned=False),
            out_channels=256,
            featmap_strides=[4, 8, 16, 32],
        ),
        bbox_head=dict(type=TorchvisionBBoxHead, num_classes=91, in_channels=256, fc_out_channels=1024,
                       roi_feat_size=7, bbox_coder=dict(type=TorchvisionBoxCoder, weights=(10.0, 10.0, 5.0, 5.0))),
    ),
    test_cfg=dict(
        # rpn_pre_nms_top_n_test / rpn_post_nms_top_n_test 1000, rpn_nms_thresh 0.7, min_size 1e-3
        rpn=dict(nms_pre=1000, max_per_img=1000, nms=dict(iou_threshold=0.7), min_bbox_size=1e-3),
        # box_score_thresh 0.05, remove_small_boxes 1e-2, box_nms_thresh 0.5, box_detections_per_img 100
        rcnn=dict(score_thr=0.05, min_bbox_size=1e-2, nms=dict(iou_threshold=0.5), max_per_img=100),
    ),
)

# GeneralizedRCNNTransform(min_size=800, max_size=1333, ImageNet mean/std, size_divisible=32)
test_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=TorchvisionResizeNormalize, min_size=800, max_size=1333,
         mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
    dict(type=Pad, size_divisor=32),
    dict(type=DefaultFormatBundle),
    dict(type=Collect, keys=["img"]),
]
data_root = "data/coco/"
data = dict(
    samples_per_gpu=1,
    workers_per_gpu=2,
    val=dict(type=CocoDataset, ann_file=data_root + "annotations/instances_val2017.json",
             img_prefix=data_root + "val2017/", pipeline=test_pipeline),
    test=dict(type=CocoDataset, ann_file=data_root + "annotations/instances_val2017.json",
              img_prefix=data_root + "val2017/", pipeline=test_pipeline),
)
evaluation = dict(interval=1, metric="bbox")
