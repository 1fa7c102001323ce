from .bbox_heads import Shared2FCBBoxHead
from .roi_extractors import SingleRoIExtractor
from .standard_roi_head import StandardRoIHead, boxes_to_rois

__all__ = ["Shared2FCBBoxHead", "SingleRoIExtractor", "StandardRoIHead", "boxes_to_rois"]
