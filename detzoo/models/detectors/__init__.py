from .base import BaseDetector
from .fast_rcnn import FastRCNN
from .rpn import RPN
from .single_stage import RetinaNet, SingleStageDetector
from .two_stage import CascadeRCNN, FasterRCNN, MaskRCNN, TwoStageDetector

__all__ = ["BaseDetector", "CascadeRCNN", "FastRCNN", "FasterRCNN", "MaskRCNN", "RetinaNet", "RPN", "SingleStageDetector",
           "TwoStageDetector"]
