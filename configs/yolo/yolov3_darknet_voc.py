"""YOLOv3 with Darknet-53 on Pascal VOC, 270 epochs: PaddleDetection's yolov3_darknet_voc row
(VOC mAP 83.5 / 83.6 / 82.2 tested at 608 / 416 / 320 with one checkpoint), built from detzoo's
modules; configs/yolo/_base_/paddle_yolov3.py says what follows PaddleDetection and what does
not. The 416 / 320 rows: ``--cfg-options "data.test.pipeline.1.img_scale=(416,416)"``.

Trained on VOC2007 + VOC2012 trainval, tested on VOC2007 test (20 classes, VOC mAP at IoU 0.5,
11-point AP for VOC2007 as Paddle's map_type '11point'). Darknet-53's batch norms train here
(Paddle does not freeze them; MMDetection's Darknet default ``norm_eval=True`` is turned off).
"""
from detzoo.data import ConcatDataset, VOCDataset
from detzoo.data.transforms import MultiImageMixDataset

from .._base_.default_runtime import *  # noqa: F401,F403
from ._base_.paddle_yolov3 import *  # noqa: F401,F403
from ._base_.paddle_yolov3 import paddle_yolo_numerics
from ._base_.yolov3_d53 import model

paddle_yolo_numerics(model)  # Paddle's yolo_box decoding + multiclass NMS at test time

model["backbone"]["norm_eval"] = False
model["backbone"]["init_cfg"] = dict(type="Pretrained", checkpoint="DarkNet53_pretrained")
model["bbox_head"]["num_classes"] = 20

dataset_type = VOCDataset
data_root = "data/VOCdevkit/"
data = dict(
    samples_per_gpu=8,
    workers_per_gpu=4,
    train=dict(
        type=MultiImageMixDataset,
        dataset=dict(type=ConcatDataset, datasets=[
            dict(type=VOCDataset, ann_file=data_root + f"VOC{year}/ImageSets/Main/trainval.txt",
                 img_prefix=data_root + f"VOC{year}/", pipeline=load_pipeline)  # noqa: F405
            for year in (2007, 2012)]),
        pipeline=train_pipeline),  # noqa: F405
    val=dict(type=VOCDataset, ann_file=data_root + "VOC2007/ImageSets/Main/test.txt",
             img_prefix=data_root + "VOC2007/", pipeline=test_pipeline),  # noqa: F405
    test=dict(type=VOCDataset, ann_file=data_root + "VOC2007/ImageSets/Main/test.txt",
              img_prefix=data_root + "VOC2007/", pipeline=test_pipeline),  # noqa: F405
    batch_augments=batch_augments,  # noqa: F405
)
evaluation = dict(interval=10, metric="mAP")
