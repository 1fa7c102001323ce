"""Fast R-CNN, caffe-style ResNet-50 FPN (BGR input, std 1, no BN training), 1x on COCO
(proposals of rpn_r50_fpn_1x_coco)."""
from detzoo.data.transforms import Normalize

from .fast_rcnn_r50_fpn_1x_coco import *  # noqa: F401,F403

model["backbone"].update(norm_cfg=dict(type="BN", requires_grad=False), style="caffe")  # noqa: F405
model["backbone"]["init_cfg"] = dict(type="Pretrained", checkpoint="open-mmlab://detectron2/resnet50_caffe")  # noqa: F405
# caffe weights expect BGR, mean-subtracted, unscaled input (detzoo.data.norm_presets "caffe")
img_norm_cfg = dict(mean=[103.53, 116.28, 123.675], std=[1.0, 1.0, 1.0], to_rgb=False)
for step in train_pipeline + test_pipeline[2]["transforms"]:  # noqa: F405
    if step["type"] is Normalize:
        step.update(img_norm_cfg)
