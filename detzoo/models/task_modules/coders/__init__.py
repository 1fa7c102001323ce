from .delta_xywh import DeltaXYWHBBoxCoder

__all__ = ["DeltaXYWHBBoxCoder"]
