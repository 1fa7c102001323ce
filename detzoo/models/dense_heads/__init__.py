from .anchor_head import AnchorHead, flatten_levels
from .rpn_head import RPNHead

__all__ = ["AnchorHead", "flatten_levels", "RPNHead"]
