from .anchor_head import AnchorHead, flatten_levels
from .base_dense_head import BaseDenseHead, filter_scores_and_topk
from .retina_head import RetinaHead
from .rpn_head import RPNHead

__all__ = ["AnchorHead", "BaseDenseHead", "filter_scores_and_topk", "flatten_levels", "RetinaHead", "RPNHead"]

from .anchor_free_head import AnchorFreeHead  # noqa: E402
from .atss_head import ATSSHead, ATSSStyleHead  # noqa: E402
from .fcos_head import FCOSHead  # noqa: E402
from .gfl_head import GFLHead, Integral  # noqa: E402

__all__ += ["AnchorFreeHead", "ATSSHead", "ATSSStyleHead", "FCOSHead", "GFLHead", "Integral"]
