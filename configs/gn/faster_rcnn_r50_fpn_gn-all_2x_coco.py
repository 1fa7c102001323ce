"""Faster R-CNN, ResNet-50 FPN with GroupNorm in backbone, FPN and box head, 2x on COCO.

MMDetection has no Faster R-CNN GN-all config nor weights: this is its
configs/gn/mask_rcnn_r50_fpn_gn-all_2x_coco.py without the mask head. Like that config it
expects the Detectron GN backbone ``open-mmlab://detectron/resnet50_gn`` (caffe-trained, so BGR
input with std 1; ``model.backbone.init_cfg``) and keeps the pytorch-style stride placement.
Needs ``Shared4Conv1FCBBoxHead`` in detzoo.models.roi_heads.
"""
from detzoo.data.transforms import Normalize
from detzoo.models.roi_heads import Shared4Conv1FCBBoxHead

from ..faster_rcnn.faster_rcnn_r50_fpn_2x_coco import *  # noqa: F401,F403

norm_cfg = dict(type="GN", num_groups=32, requires_grad=True)
model["backbone"].update(norm_cfg=norm_cfg)  # noqa: F405
model["backbone"]["init_cfg"] = dict(type="Pretrained", checkpoint="open-mmlab://detectron/resnet50_gn")  # noqa: F405
model["neck"].update(norm_cfg=norm_cfg)  # noqa: F405
model["roi_head"]["bbox_head"].update(  # noqa: F405
    type=Shared4Conv1FCBBoxHead, conv_out_channels=256, norm_cfg=norm_cfg)
img_norm_cfg = dict(mean=[103.53, 116.28, 123.675], std=[1.0, 1.0, 1.0], to_rgb=False)
for step in train_pipeline + test_pipeline[1]["transforms"]:  # noqa: F405
    if step["type"] is Normalize:
        step.update(img_norm_cfg)
