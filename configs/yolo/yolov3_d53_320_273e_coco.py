"""YOLOv3, Darknet-53, trained and tested at 320 (single scale), 273 epochs on COCO
(MMDetection box AP 27.9)."""
from .._base_.default_runtime import *  # noqa: F401,F403
from ._base_.coco_yolov3 import *  # noqa: F401,F403
from ._base_.coco_yolov3 import set_scales
from ._base_.schedule_273e import *  # noqa: F401,F403
from ._base_.yolov3_d53 import model  # noqa: F401

set_scales(train_pipeline, test_pipeline, (320, 320), (320, 320))  # noqa: F405
