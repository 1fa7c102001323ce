from .base_roi_head import BaseRoIHead, boxes_to_rois
from .bbox_heads import BBoxHead, ConvFCBBoxHead, Shared2FCBBoxHead, Shared4Conv1FCBBoxHead
from .cascade_roi_head import CascadeRoIHead
from .roi_extractors import SingleRoIExtractor
from .shared_heads import ResLayer
from .standard_roi_head import StandardRoIHead

__all__ = ["BBoxHead", "BaseRoIHead", "CascadeRoIHead", "ConvFCBBoxHead", "ResLayer", "Shared2FCBBoxHead", "Shared4Conv1FCBBoxHead", "SingleRoIExtractor", "StandardRoIHead",
           "boxes_to_rois"]
