"""Cascade R-CNN, caffe-style ResNet-101 FPN (BGR input, std 1, frozen BN statistics), 1x on COCO."""
from detzoo.data.transforms import Normalize

from .cascade_rcnn_r50_fpn_1x_coco import *  # noqa: F401,F403

model["backbone"].update(depth=101, norm_cfg=dict(type="BN", requires_grad=False), style="caffe")  # noqa: F405
model["backbone"]["init_cfg"] = dict(type="Pretrained", checkpoint="open-mmlab://detectron2/resnet101_caffe")  # noqa: F405
# caffe weights expect BGR, mean-subtracted, unscaled input (detzoo.data.norm_presets "caffe")
img_norm_cfg = dict(mean=[103.53, 116.28, 123.675], std=[1.0, 1.0, 1.0], to_rgb=False)
for step in train_pipeline + test_pipeline[1]["transforms"]:  # noqa: F405
    if step["type"] is Normalize:
        step.update(img_norm_cfg)
