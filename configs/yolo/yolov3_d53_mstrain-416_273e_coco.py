"""YOLOv3, Darknet-53, multi-scale training (320..416), tested at 416, 273 epochs on COCO
(MMDetection configs/yolo/yolov3_d53_mstrain-416_273e_coco.py)."""
from .._base_.default_runtime import *  # noqa: F401,F403
from ._base_.coco_yolov3 import *  # noqa: F401,F403
from ._base_.coco_yolov3 import set_scales
from ._base_.schedule_273e import *  # noqa: F401,F403
from ._base_.yolov3_d53 import model  # noqa: F401

set_scales(train_pipeline, test_pipeline, [(320, 320), (416, 416)], (416, 416))  # noqa: F405
