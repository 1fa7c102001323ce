from .delta_xywh import DeltaXYWHBBoxCoder

__all__ = ["DeltaXYWHBBoxCoder"]

# YOLOv3
from .yolo_coder import YOLOBBoxCoder  # noqa: E402

__all__ += ["YOLOBBoxCoder"]

from .distance_point import DistancePointBBoxCoder, bbox2distance, distance2bbox  # noqa: E402

__all__ += ["DistancePointBBoxCoder", "bbox2distance", "distance2bbox"]
