from .base import BaseDetector
from .two_stage import FasterRCNN, TwoStageDetector

__all__ = ["BaseDetector", "FasterRCNN", "TwoStageDetector"]
