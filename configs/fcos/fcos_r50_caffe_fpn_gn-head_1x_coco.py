"""FCOS, caffe-style ResNet-50 FPN with a GN head, 1x on COCO (MMDetection box AP 36.6).

MMDetection 2.x configs/fcos/fcos_r50_caffe_fpn_gn-head_1x_coco.py (model: see
_base_/models/fcos_r50_caffe_fpn_gn_head.py). Input: BGR with the Detectron1 caffe means and
std 1, as the backbone was trained. The optimizer doubles the biases' lr and exempts them from
weight decay, clips gradients at 35 and warms up at a constant third of the lr. The backbone
starts from open-mmlab://detectron/resnet50_caffe, as in mmdet (``model.backbone.init_cfg``).
"""
import torch

from detzoo.data.transforms import Normalize

from .._base_.datasets.coco_detection import *  # noqa: F401,F403
from .._base_.default_runtime import *  # noqa: F401,F403
from .._base_.models.fcos_r50_caffe_fpn_gn_head import model  # noqa: F401
from .._base_.schedules.schedule_1x import *  # noqa: F401,F403

# Detectron1 caffe weights (detzoo.data.norm_presets "caffe_detectron1")
img_norm_cfg = dict(mean=[102.9801, 115.9465, 122.7717], std=[1.0, 1.0, 1.0], to_rgb=False)
for step in train_pipeline + test_pipeline[1]["transforms"]:  # noqa: F405
    if step["type"] is Normalize:
        step.update(img_norm_cfg)

optimizer = dict(type=torch.optim.SGD, lr=0.01, momentum=0.9, weight_decay=0.0001,
                 paramwise_cfg=dict(bias_lr_mult=2.0, bias_decay_mult=0.0))
optimizer_config = dict(grad_clip=dict(max_norm=35, norm_type=2))
lr_config = dict(policy="step", warmup="constant", warmup_iters=500, warmup_ratio=1.0 / 3, step=[8, 11])
