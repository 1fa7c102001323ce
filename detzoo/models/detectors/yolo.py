"""YOLOv3 (Redmon & Farhadi, https://arxiv.org/abs/1804.02767): a one-stage detector whose head
predicts box offsets, objectness and per-class sigmoid scores for 3 anchors per cell on 3
levels (MMDetection ``YOLOV3``: a plain ``SingleStageDetector``)."""
from __future__ import annotations

from .single_stage import SingleStageDetector

__all__ = ["YOLOV3"]


class YOLOV3(SingleStageDetector):
    """backbone (Darknet-53, or any backbone giving 3 levels finest first) -> YOLOV3Neck ->
    YOLOV3Head. Same arguments as :class:`SingleStageDetector`."""
