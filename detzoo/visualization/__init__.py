"""Drawing detections and ground truth (OpenCV, BGR uint8) with a fixed colour per class."""
from detzoo.visualization.draw import (auto_font_scale, draw_detections, draw_ground_truth,
                                       imwrite_atomic)
from detzoo.visualization.palette import get_color, get_palette

__all__ = ["auto_font_scale", "draw_detections", "draw_ground_truth", "imwrite_atomic",
           "get_color", "get_palette"]
