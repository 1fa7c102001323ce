"""RetinaNet, ResNet-50 FPN, 2x schedule on COCO (MMDetection box AP 37.4); SGD lr 0.01."""
from .retinanet_r50_fpn_1x_coco import *  # noqa: F401,F403
from .._base_.schedules.schedule_2x import lr_config, runner  # noqa: F401  (keeps lr 0.01)
