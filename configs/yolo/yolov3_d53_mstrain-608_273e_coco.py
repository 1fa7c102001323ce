"""YOLOv3, Darknet-53, multi-scale training (320..608), tested at 608, 273 epochs on COCO
(MMDetection box AP 33.7; mmdet 3.x name yolov3_d53_8xb8-ms-608-273e_coco)."""
from .._base_.default_runtime import *  # noqa: F401,F403
from ._base_.coco_yolov3 import *  # noqa: F401,F403
from ._base_.schedule_273e import *  # noqa: F401,F403
from ._base_.yolov3_d53 import model  # noqa: F401
