from .assign_result import AssignResult
from .max_iou_assigner import MaxIoUAssigner

__all__ = ["AssignResult", "MaxIoUAssigner"]

# YOLOv3
from .grid_assigner import GridAssigner  # noqa: E402

__all__ += ["GridAssigner"]

from .atss_assigner import ATSSAssigner  # noqa: E402

__all__ += ["ATSSAssigner"]
