from .anchor_head import AnchorHead, flatten_levels
from .base_dense_head import BaseDenseHead, filter_scores_and_topk
from .rpn_head import RPNHead

__all__ = ["AnchorHead", "BaseDenseHead", "filter_scores_and_topk", "flatten_levels", "RPNHead"]
