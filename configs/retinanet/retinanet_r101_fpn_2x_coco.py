"""RetinaNet, ResNet-101 FPN, 2x schedule on COCO (MMDetection box AP 38.9)."""
from .retinanet_r50_fpn_2x_coco import *  # noqa: F401,F403

model["backbone"]["depth"] = 101  # noqa: F405
model["backbone"]["init_cfg"] = dict(type="Pretrained", checkpoint="torchvision://resnet101")  # noqa: F405
