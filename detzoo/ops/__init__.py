"""Pure-PyTorch detection ops: box geometry, NMS, RoIAlign and instance masks (vectorised,
device-agnostic)."""
from .boxes import (bbox_overlaps, bbox_overlaps_np, box_area, box_iou, clip_boxes, rescale_boxes,
                    xywh_to_xyxy, xyxy_to_xywh)
from .deform_conv import (DeformConv2d, DeformConv2dPack, ModulatedDeformConv2d,
                          ModulatedDeformConv2dPack, deform_conv2d, modulated_deform_conv2d)
from .masks import crop_and_resize_bitmaps, crop_and_resize_polygons, paste_masks_in_image
from .nms import batched_nms, multiclass_nms, nms
from .roi_align import RoIAlign, roi_align

__all__ = [
    "bbox_overlaps", "bbox_overlaps_np", "box_area", "box_iou", "clip_boxes", "rescale_boxes",
    "xywh_to_xyxy", "xyxy_to_xywh", "batched_nms", "multiclass_nms", "nms", "RoIAlign", "roi_align",
    "crop_and_resize_bitmaps", "crop_and_resize_polygons", "paste_masks_in_image",
]
__all__ += ["deform_conv2d", "modulated_deform_conv2d", "DeformConv2d", "DeformConv2dPack",
            "ModulatedDeformConv2d", "ModulatedDeformConv2dPack"]
