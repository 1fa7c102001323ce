from .anchor_generator import AnchorGenerator

__all__ = ["AnchorGenerator"]

# YOLOv3
from .yolo_anchor_generator import YOLOAnchorGenerator  # noqa: E402

__all__ += ["YOLOAnchorGenerator"]
