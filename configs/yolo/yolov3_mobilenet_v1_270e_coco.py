"""YOLOv3 with a MobileNet-V1 backbone, 270 epochs on COCO: PaddleDetection's
yolov3_mobilenet_v1 row (box AP 29.3 / 29.3 / 27.1 tested at 608 / 416 / 320 with one
checkpoint), built from detzoo's modules; configs/yolo/_base_/paddle_yolov3.py says what follows
PaddleDetection and what does not. The 416 / 320 rows:
``--cfg-options "data.test.pipeline.1.img_scale=(416,416)"``.

MobileNet-V1 (width 1.0, Paddle's layout: detzoo.models.backbones.mobilenet_v1) gives 256 / 512
/ 1024 channels at strides 8 / 16 / 32: blocks conv3_2, conv4_2 and conv6 (Paddle's
feature_maps [4, 6, 13]); its batch norms train. Backbone weights: Paddle's
``MobileNetV1_pretrained`` (``model.backbone.init_cfg``).
"""
from detzoo.models.backbones.mobilenet_v1 import MobileNetV1

from .._base_.default_runtime import *  # noqa: F401,F403
from ._base_.paddle_yolov3 import *  # noqa: F401,F403
from ._base_.paddle_yolov3 import paddle_yolo_numerics
from ._base_.yolov3_d53 import model
# the COCO data, schedule and evaluation of the Darknet-53 row (it runs first: its edits of the
# shared model dict are overridden below)
from .yolov3_darknet_270e_coco import data, data_root, dataset_type, evaluation  # noqa: F401

paddle_yolo_numerics(model)  # Paddle's yolo_box decoding + multiclass NMS at test time

model["backbone"] = dict(type=MobileNetV1, scale=1.0, out_indices=(4, 6, 13), norm_eval=False)
model["backbone"]["init_cfg"] = dict(type="Pretrained", checkpoint="MobileNetV1_pretrained")
model["neck"]["in_channels"] = [1024, 512, 256]
