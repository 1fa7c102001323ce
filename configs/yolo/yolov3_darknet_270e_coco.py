"""YOLOv3 with Darknet-53, 270 epochs on COCO: PaddleDetection's yolov3_darknet row (box AP
38.9 / 37.5 / 34.8 tested at 608 / 416 / 320 with one checkpoint, yolov3_darknet.tar), built from
detzoo's modules; configs/yolo/_base_/paddle_yolov3.py says what follows PaddleDetection and what
does not. The 416 / 320 rows: ``--cfg-options "data.test.pipeline.1.img_scale=(416,416)"``.

Darknet-53's batch norms train here (Paddle does not freeze them; MMDetection's Darknet default
``norm_eval=True`` is turned off). The Paddle weights load after ``detzoo convert
yolov3_darknet.tar yolov3_darknet.pth --from paddle`` (detzoo.zoo.converters.paddle_single_stage).
"""
from detzoo.data import CocoDataset
from detzoo.data.transforms import MultiImageMixDataset

from .._base_.default_runtime import *  # noqa: F401,F403
from ._base_.paddle_yolov3 import *  # noqa: F401,F403
from ._base_.paddle_yolov3 import paddle_yolo_numerics
from ._base_.yolov3_d53 import model

paddle_yolo_numerics(model)  # Paddle's yolo_box decoding + multiclass NMS at test time

model["backbone"]["norm_eval"] = False
model["backbone"]["init_cfg"] = dict(type="Pretrained", checkpoint="DarkNet53_pretrained")

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
