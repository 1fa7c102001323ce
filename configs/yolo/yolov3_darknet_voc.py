"""YOLOv3 with Darknet-53 on Pascal VOC, 270 epochs: PaddleDetection's yolov3_darknet_voc row
(VOC mAP 83.5 / 83.6 / 82.2 tested at 608 / 416 / 320), built from detzoo's modules; see
configs/yolo/_base_/paddle_yolov3.py for what follows PaddleDetection and what does not.

Trained on VOC2007 + VOC2012 trainval, tested on VOC2007 test (20 classes, VOC mAP at IoU 0.5).
Darknet-53's batch norms train here (Paddle does not freeze them; MMDetection's Darknet default
``norm_eval=True`` is turned off). Needs ``detzoo.data.VOCDataset`` taking a list of
``ann_file`` / ``img_prefix`` (MMDetection 2.x concatenates them) and the "mAP" metric.
"""
from detzoo.data import VOCDataset

from .._base_.default_runtime import *  # noqa: F401,F403
from ._base_.paddle_yolov3 import *  # noqa: F401,F403
from ._base_.yolov3_d53 import model

model["backbone"]["norm_eval"] = False
model["bbox_head"]["num_classes"] = 20

dataset_type = VOCDataset
data_root = "data/VOCdevkit/"
data = dict(
    samples_per_gpu=8,
    workers_per_gpu=4,
    train=dict(type=VOCDataset,
               ann_file=[data_root + "VOC2007/ImageSets/Main/trainval.txt",
                         data_root + "VOC2012/ImageSets/Main/trainval.txt"],
               img_prefix=[data_root + "VOC2007/", data_root + "VOC2012/"],
               pipeline=train_pipeline),  # noqa: F405
    val=dict(type=VOCDataset, ann_file=data_root + "VOC2007/ImageSets/Main/test.txt",
             img_prefix=data_root + "VOC2007/", pipeline=test_pipeline),  # noqa: F405
    test=dict(type=VOCDataset, ann_file=data_root + "VOC2007/ImageSets/Main/test.txt",
              img_prefix=data_root + "VOC2007/", pipeline=test_pipeline),  # noqa: F405
)
evaluation = dict(interval=10, metric="mAP")
