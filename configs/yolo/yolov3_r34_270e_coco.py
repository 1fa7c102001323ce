"""YOLOv3 with a ResNet-34 backbone, 270 epochs on COCO: PaddleDetection's yolov3_r34 row
(box AP 36.2 / 34.3 / 31.4 tested at 608 / 416 / 320), built from detzoo's modules; see
configs/yolo/_base_/paddle_yolov3.py for what follows PaddleDetection and what does not.

ResNet-34 (BasicBlock) gives 128 / 256 / 512 channels at strides 8 / 16 / 32
(our out_indices 1, 2, 3 = Paddle's feature_maps [3, 4, 5]); its batch norms train (Paddle:
freeze_at 0, freeze_norm False). Backbone weights: ImageNet ResNet-34 in Paddle's release; none is
set here (``model.backbone.init_cfg``).
"""
from detzoo.models.backbones import ResNet

from .._base_.default_runtime import *  # noqa: F401,F403
from ._base_.coco_yolov3 import data, evaluation  # noqa: F401
from ._base_.paddle_yolov3 import *  # noqa: F401,F403
from ._base_.yolov3_d53 import model

model["backbone"] = dict(type=ResNet, depth=34, num_stages=4, out_indices=(1, 2, 3), frozen_stages=-1,
                         norm_cfg=dict(type="BN", requires_grad=True), norm_eval=False, style="pytorch")
model["neck"]["in_channels"] = [512, 256, 128]
data["train"]["pipeline"] = train_pipeline  # noqa: F405
data["val"]["pipeline"] = data["test"]["pipeline"] = test_pipeline  # noqa: F405
