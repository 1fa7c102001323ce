from .base import BaseDetector
from .fast_rcnn import FastRCNN
from .rpn import RPN
from .single_stage import RetinaNet, SingleStageDetector
from .single_stage_variants import ATSS, FCOS, GFL
from .ssd import SSD
from .two_stage import CascadeRCNN, FasterRCNN, MaskRCNN, TwoStageDetector
from .yolo import YOLOV3

__all__ = ["ATSS", "BaseDetector", "CascadeRCNN", "FCOS", "FastRCNN", "FasterRCNN", "GFL", "MaskRCNN", "RPN",
           "RetinaNet", "SSD", "SingleStageDetector", "TwoStageDetector", "YOLOV3"]
