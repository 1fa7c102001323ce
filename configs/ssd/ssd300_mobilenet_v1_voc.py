"""SSD300 with a MobileNet-V1 backbone on Pascal VOC: PaddleDetection's ssd_mobilenet_v1_voc row
(VOC mAP 73.13; 120 epochs, total batch 64 on 2 GPUs), built from detzoo's SSD modules after
PaddleDetection's configs/ssd/ssd_mobilenet_v1_voc.yml and ppdet's MobileNet / MultiBoxHead.

Kept from PaddleDetection:
  * backbone: MobileNet-V1 (width 1.0) with four extra blocks; SSD maps conv5_5 (19x19, 512),
    conv6 (10x10, 1024) and the extra blocks (5, 3, 2, 1; 512, 256, 256, 128 channels);
  * head: 1x1 prediction convs (MultiBoxHead kernel_size 1);
  * default boxes: min sizes 60..285, max sizes 150..300 (none on the first level), aspect
    ratios 2 (first level) and 2, 3, centred at (i + 0.5) * 300 / map size -> 3 + 6 * 5 boxes
    per location, 1917 in all; deltas with variances (0.1, 0.1, 0.2, 0.2);
  * training: IoU 0.5 matching (each ground truth also keeps its best box), hard negatives at
    3:1, smooth L1; RMSProp lr 1e-3 (rho 0.95, eps 1e-6, no momentum), L2 5e-5 (none on batch
    norms), backbone convs at 0.1x lr, batch norms trained; 20 classes;
  * data: VOC2007 + VOC2012 trainval, tested on VOC2007 test (11-point mAP at IoU 0.5);
    colour distortion, expand (fill 127.5, up to 4x), min-IoU crop, resize to 300x300 without
    keeping the aspect ratio, flip; RGB normalised by (x - 127.5) / 127.502231.
Not reproduced (docs/ssd.md): Paddle resizes with PIL bilinear (here cv2) and distorts brightness
multiplicatively (0.875..1.125; here +-32 grey levels); its test NMS keeps the best 400 boxes per
class (here 1000 per level), its loss is normalised by the number of positives (here
max(positives, 1) per image); its piecewise lr (x0.5, x0.25, x0.1, x0.01 after 10k/15k/20k/25k
of 28k iterations) becomes a step schedule with gamma 0.5 at the same fractions of 120 epochs.
The Paddle weights keep background at class 0 and the sqrt(min*max) box last in each location;
the converter moves both (our order: background last, that box second): `detzoo convert
ssd_mobilenet_v1_voc.tar ssd_mobilenet_v1_voc.pth --from paddle` (paddle_single_stage).
"""
import torch

from detzoo.data import ConcatDataset, VOCDataset
from detzoo.data.transforms import (Collect, DefaultFormatBundle, Expand, ImageToTensor,
                                    LoadAnnotations, LoadImageFromFile, MinIoURandomCrop,
                                    MultiScaleFlipAug, Normalize, PhotoMetricDistortion, RandomFlip,
                                    Resize)
from detzoo.models.backbones.mobilenet_v1 import MobileNetV1
from detzoo.models.dense_heads.ssd_head import SSDHead
from detzoo.models.detectors.ssd import SSD
from detzoo.models.task_modules import DeltaXYWHBBoxCoder, MaxIoUAssigner, PseudoSampler
from detzoo.models.task_modules.anchors.ssd_anchor_generator import SSDAnchorGenerator

from .._base_.default_runtime import *  # noqa: F401,F403

input_size = 300
model = dict(
    type=SSD,
    backbone=dict(type=MobileNetV1, scale=1.0, with_extra_blocks=True,
                  extra_block_filters=((256, 512), (128, 256), (128, 256), (64, 128)),
                  out_indices=(11, 13, 14, 15, 16, 17), norm_eval=False,
                  init_cfg=dict(type="Pretrained", checkpoint="ssd_mobilenet_v1_coco_pretrained")),  # Paddle's COCO SSD (backbone part)
    neck=None,
    bbox_head=dict(
        type=SSDHead,
        num_classes=20,
        in_channels=(512, 1024, 512, 256, 256, 128),
        kernel_size=1,
        anchor_generator=dict(
            type=SSDAnchorGenerator, scale_major=False,
            # Paddle's prior_box step is image size / map size (300 / 19 on the first level)
            strides=[input_size / 19, 30, 60, 100, 150, 300],
            min_sizes=[60.0, 105.0, 150.0, 195.0, 240.0, 285.0],
            max_sizes=[None, 150.0, 195.0, 240.0, 285.0, 300.0],
            ratios=[[2], [2, 3], [2, 3], [2, 3], [2, 3], [2, 3]]),
        bbox_coder=dict(type=DeltaXYWHBBoxCoder, target_means=[0.0, 0.0, 0.0, 0.0],
                        target_stds=[0.1, 0.1, 0.2, 0.2]),
    ),
    train_cfg=dict(
        assigner=dict(type=MaxIoUAssigner, pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.0,
                      ignore_iof_thr=-1, gt_max_assign_all=False),
        sampler=dict(type=PseudoSampler),
        smoothl1_beta=1.0,
        allowed_border=-1,
        pos_weight=-1,
        neg_pos_ratio=3,
    ),
    # Paddle detection_output: score > 0.01, NMS 0.45, keep 200
    test_cfg=dict(nms_pre=1000, nms=dict(type="nms", iou_threshold=0.45), min_bbox_size=0,
                  score_thr=0.01, max_per_img=200),
)

# PaddleDetection NormalizeImage(is_scale=False, mean=127.5, std=127.502231) on RGB
img_norm_cfg = dict(mean=[127.5, 127.5, 127.5], std=[127.502231, 127.502231, 127.502231], to_rgb=True)
train_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=LoadAnnotations, with_bbox=True),
    dict(type=PhotoMetricDistortion, brightness_delta=32, contrast_range=(0.5, 1.5),
         saturation_range=(0.5, 1.5), hue_delta=18),
    dict(type=Expand, mean=img_norm_cfg["mean"], to_rgb=img_norm_cfg["to_rgb"], ratio_range=(1, 4)),
    dict(type=MinIoURandomCrop, min_ious=(0.1, 0.3, 0.5, 0.7, 0.9), min_crop_size=0.3),
    dict(type=Resize, img_scale=(input_size, input_size), keep_ratio=False),
    dict(type=RandomFlip, flip_ratio=0.5),
    dict(type=Normalize, **img_norm_cfg),
    dict(type=DefaultFormatBundle),
    dict(type=Collect, keys=["img", "gt_bboxes", "gt_labels"]),
]
test_pipeline = [
    dict(type=LoadImageFromFile),
    dict(
        type=MultiScaleFlipAug,
        img_scale=(input_size, input_size),
        flip=False,
        transforms=[
            dict(type=Resize, keep_ratio=False),
            dict(type=Normalize, **img_norm_cfg),
            dict(type=ImageToTensor, keys=["img"]),
            dict(type=Collect, keys=["img"]),
        ],
    ),
]
dataset_type = VOCDataset
data_root = "data/VOCdevkit/"
data = dict(
    samples_per_gpu=32,
    workers_per_gpu=8,
    train=dict(
        type=ConcatDataset,
        datasets=[
            dict(type=VOCDataset, ann_file=data_root + "VOC2007/ImageSets/Main/trainval.txt",
                 img_prefix=data_root + "VOC2007/", pipeline=train_pipeline),
            dict(type=VOCDataset, ann_file=data_root + "VOC2012/ImageSets/Main/trainval.txt",
                 img_prefix=data_root + "VOC2012/", pipeline=train_pipeline),
        ],
    ),
    val=dict(type=VOCDataset, ann_file=data_root + "VOC2007/ImageSets/Main/test.txt",
             img_prefix=data_root + "VOC2007/", pipeline=test_pipeline),
    test=dict(type=VOCDataset, ann_file=data_root + "VOC2007/ImageSets/Main/test.txt",
              img_prefix=data_root + "VOC2007/", pipeline=test_pipeline),
)
evaluation = dict(interval=10, metric="mAP")
checkpoint_config = dict(interval=10)

# the ParamAttr of every backbone conv has learning_rate 0.1; batch norms have L2Decay(0)
optimizer = dict(type=torch.optim.RMSprop, lr=0.001, alpha=0.95, eps=1e-6, momentum=0.0,
                 weight_decay=5e-5,
                 paramwise_cfg=dict(custom_keys={"conv.weight": dict(lr_mult=0.1),
                                                 ".bn.": dict(decay_mult=0.0)}))
optimizer_config = dict(grad_clip=None)
lr_config = dict(policy="step", gamma=0.5, step=[43, 64, 86, 107])
runner = dict(type="EpochBasedRunner", max_epochs=120)
auto_scale_lr = dict(enable=True, base_batch_size=64)
