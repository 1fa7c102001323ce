"""Pure-PyTorch detection ops: box geometry, NMS and RoIAlign (vectorised, device-agnostic)."""
from .boxes import (bbox_overlaps, box_area, box_iou, clip_boxes, rescale_boxes, xywh_to_xyxy,
                    xyxy_to_xywh)
from .nms import batched_nms, multiclass_nms, nms
from .roi_align import RoIAlign, roi_align

__all__ = [
    "bbox_overlaps", "box_area", "box_iou", "clip_boxes", "rescale_boxes", "xywh_to_xyxy",
    "xyxy_to_xywh", "batched_nms", "multiclass_nms", "nms", "RoIAlign", "roi_align",
]
