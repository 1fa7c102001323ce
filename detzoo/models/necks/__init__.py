"""Necks: backbone feature tuple -> feature pyramid tuple."""
from .fpn import FPN
from .ssd_neck import SSDNeck
from .yolo_neck import YOLOV3Neck

__all__ = ["FPN", "SSDNeck", "YOLOV3Neck"]
