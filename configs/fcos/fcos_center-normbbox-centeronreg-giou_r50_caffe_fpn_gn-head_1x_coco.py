"""FCOS with the official repo's tricks, caffe-style ResNet-50 FPN, 1x on COCO (MMDetection box
AP 38.7): centre sampling (radius 1.5 strides), distances normalised by the stride (ReLU instead
of exp), centre-ness on the regression branch, GIoU loss, biased tower convs (conv_bias=True:
keys ``cls_convs.i.conv.bias`` exist), NMS IoU 0.6.

MMDetection 2.x configs/fcos/fcos_center-normbbox-centeronreg-giou_r50_caffe_fpn_gn-head_1x_coco.py
(its base, the plain FCOS config, written out: a config name with '-' cannot be imported).
Detectron2 caffe weights (open-mmlab://detectron2/resnet50_caffe), hence the MSRA means; the
biases' lr is doubled without weight decay, no gradient clipping, a linear warm-up.
"""
import torch

from detzoo.data.transforms import Normalize
from detzoo.models.losses.iou_loss import GIoULoss

from .._base_.datasets.coco_detection import *  # noqa: F401,F403
from .._base_.default_runtime import *  # noqa: F401,F403
from .._base_.models.fcos_r50_caffe_fpn_gn_head import model  # noqa: F401
from .._base_.schedules.schedule_1x import *  # noqa: F401,F403

model["bbox_head"].update(norm_on_bbox=True, centerness_on_reg=True, dcn_on_last_conv=False,
                          center_sampling=True, center_sample_radius=1.5, conv_bias=True,
                          loss_bbox=dict(type=GIoULoss, loss_weight=1.0))
model["test_cfg"]["nms"]["iou_threshold"] = 0.6
model["backbone"]["init_cfg"] = dict(type="Pretrained", checkpoint="open-mmlab://detectron2/resnet50_caffe")

# Detectron2 caffe weights (detzoo.data.norm_presets "caffe")
img_norm_cfg = dict(mean=[103.53, 116.28, 123.675], std=[1.0, 1.0, 1.0], to_rgb=False)
for step in train_pipeline + test_pipeline[1]["transforms"]:  # noqa: F405
    if step["type"] is Normalize:
        step.update(img_norm_cfg)

optimizer = dict(type=torch.optim.SGD, lr=0.01, momentum=0.9, weight_decay=0.0001,
                 paramwise_cfg=dict(bias_lr_mult=2.0, bias_decay_mult=0.0))
optimizer_config = dict(grad_clip=None)
lr_config = dict(policy="step", warmup="linear", warmup_iters=500, warmup_ratio=1.0 / 3, step=[8, 11])
