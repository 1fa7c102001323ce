"""YOLOv3 with ResNet-34 on Pascal VOC, 270 epochs: PaddleDetection's yolov3_r34_voc row (VOC mAP
82.6 / 81.9 / 80.1 tested at 608 / 416 / 320 with one checkpoint), built from detzoo's modules;
configs/yolo/_base_/paddle_yolov3.py says what follows PaddleDetection and what does not. The 416
/ 320 rows: ``--cfg-options "data.test.pipeline.1.img_scale=(416,416)"``.

The model is yolov3_r34_270e_coco's (ResNet-34 with Paddle's projected first shortcut) with 20
classes; the data are those of yolov3_darknet_voc.
"""
from .yolov3_darknet_voc import *  # noqa: F401,F403
from .yolov3_r34_270e_coco import model as _coco_model

model = _coco_model
model["bbox_head"]["num_classes"] = 20
