"""YOLOv3 with MobileNet-V1 on Pascal VOC, 270 epochs: PaddleDetection's yolov3_mobilenet_v1_voc
row (VOC mAP 76.2 / 76.7 / 75.3 tested at 608 / 416 / 320 with one checkpoint), built from
detzoo's modules; configs/yolo/_base_/paddle_yolov3.py says what follows PaddleDetection and what
does not. The 416 / 320 rows: ``--cfg-options "data.test.pipeline.1.img_scale=(416,416)"``.

The model is yolov3_mobilenet_v1_270e_coco's with 20 classes; the data are those of
yolov3_darknet_voc (VOC2007 + 2012 trainval, VOC2007 test, 11-point mAP at IoU 0.5).
"""
from .yolov3_darknet_voc import *  # noqa: F401,F403
from .yolov3_mobilenet_v1_270e_coco import model as _coco_model

model = _coco_model
model["bbox_head"]["num_classes"] = 20
