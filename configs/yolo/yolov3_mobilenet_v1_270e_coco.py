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
from detzoo.data import CocoDataset
from detzoo.data.transforms import MultiImageMixDataset
from detzoo.models.backbones.mobilenet_v1 import MobileNetV1

from .._base_.default_runtime import *  # noqa: F401,F403
from ._base_.paddle_yolov3 import *  # noqa: F401,F403
from ._base_.paddle_yolov3 import paddle_yolo_numerics
from ._base_.yolov3_d53 import model

paddle_yolo_numerics(model)  # Paddle's yolo_box decoding + multiclass NMS at test time

model["backbone"] = dict(type=MobileNetV1, scale=1.0, out_indices=(4, 6, 13), norm_eval=False)
model["backbone"]["init_cfg"] = dict(type="Pretrained", checkpoint="MobileNetV1_pretrained")
model["neck"]["in_channels"] = [1024, 512, 256]

dataset_type = CocoDataset
data_root = "data/coco/"
data = dict(
    samples_per_gpu=8,
    workers_per_gpu=4,
    train=dict(type=MultiImageMixDataset,
               dataset=dict(type=CocoDataset, ann_file=data_root + "annotations/instances_train2017.json",
                            img_prefix=data_root + "train2017/", pipeline=load_pipeline),  # noqa: F405
               pipeline=train_pipeline),  # noqa: F405
    val=dict(type=CocoDataset, ann_file=data_root + "annotations/instances_val2017.json",
             img_prefix=data_root + "val2017/", pipeline=test_pipeline),  # noqa: F405
    test=dict(type=CocoDataset, ann_file=data_root + "annotations/instances_val2017.json",
              img_prefix=data_root + "val2017/", pipeline=test_pipeline),  # noqa: F405
    batch_augments=batch_augments,  # noqa: F405
)
evaluation = dict(interval=10, metric="bbox")
