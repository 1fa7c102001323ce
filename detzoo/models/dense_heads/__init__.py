"""Dense (one-stage and RPN) heads; post-processing is shared through BaseDenseHead."""
from .anchor_free_head import AnchorFreeHead
from .anchor_head import AnchorHead, flatten_levels
from .atss_head import ATSSHead, ATSSStyleHead
from .base_dense_head import BaseDenseHead, filter_scores_and_topk
from .fcos_head import FCOSHead
from .gfl_head import GFLHead, Integral
from .retina_head import RetinaHead
from .rpn_head import RPNHead
from .ssd_head import SSDHead
from .yolo_head import YOLOV3Head

__all__ = ["AnchorFreeHead", "AnchorHead", "ATSSHead", "ATSSStyleHead", "BaseDenseHead", "FCOSHead", "GFLHead",
           "Integral", "RetinaHead", "RPNHead", "SSDHead", "YOLOV3Head", "filter_scores_and_topk", "flatten_levels"]
