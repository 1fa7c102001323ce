"""Faster R-CNN, RegNetX-3.2GF FPN, 1x schedule on COCO: the body of
``faster_rcnn_regnetx-3.2GF_fpn_{1x,2x}_coco`` (a name with '-' cannot be imported).

As mmdet configs/regnet/faster_rcnn_regnetx-3.2GF_fpn_1x_coco.py: the backbone dict is
replaced (mmdet ``_delete_=True``), the FPN takes the RegNet widths, inputs get the pycls
normalisation (BGR, detzoo.data.norm_presets "pycls") and weight decay is 5e-5. MMDetection
initialises the backbone from ``open-mmlab://regnetx_3.2gf`` (``model.backbone.init_cfg``).
"""
from detzoo.data.transforms import Normalize
from detzoo.models.backbones import RegNet

from ...faster_rcnn.faster_rcnn_r50_fpn_1x_coco import *  # noqa: F401,F403

model["backbone"] = dict(  # noqa: F405
    type=RegNet,
    arch="regnetx_3.2gf",
    out_indices=(0, 1, 2, 3),
    frozen_stages=1,
    norm_cfg=dict(type="BN", requires_grad=True),
    norm_eval=True,
    style="pytorch",
    init_cfg=dict(type="Pretrained", checkpoint="open-mmlab://regnetx_3.2gf"),
)
model["neck"]["in_channels"] = [96, 192, 432, 1008]  # noqa: F405
# the mean and std pycls used when training the RegNets
img_norm_cfg = dict(mean=[103.53, 116.28, 123.675], std=[57.375, 57.12, 58.395], to_rgb=False)
for step in train_pipeline + test_pipeline[1]["transforms"]:  # noqa: F405
    if step["type"] is Normalize:
        step.update(img_norm_cfg)
optimizer["weight_decay"] = 0.00005  # noqa: F405
