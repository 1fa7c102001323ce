"""Labels, box coding and the small helpers every torchvision-compatible component uses."""
from __future__ import annotations

import math
from typing import Sequence

import torch

from detzoo.errors import ConfigError
from detzoo.ops import batched_nms


# torchvision.models._meta._COCO_CATEGORIES: index = label = COCO category id
TORCHVISION_COCO_CATEGORIES = (
    "__background__", "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck",
    "boat", "traffic light", "fire hydrant", "N/A", "stop sign", "parking meter", "bench", "bird", "cat",
    "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "N/A", "backpack", "umbrella",
    "N/A", "N/A", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle", "N/A",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed",
    "N/A", "dining table", "N/A", "N/A", "toilet", "N/A", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "N/A", "book", "clock", "vase",
    "scissors", "teddy bear", "hair drier", "toothbrush",
)


def _inference_only(name: str):
    raise ConfigError(f"{name}: the torchvision-compatible configs are for inference only "
                      "(train torchvision models with torchvision, or use a detzoo config)")


# -- boxes ---------------------------------------------------------------------------------------
class TorchvisionBoxCoder:
    """torchvision ``BoxCoder``: ``decode(rois [N, 4], deltas [N, 4C], max_shape) -> [N, 4C]``.

    weights (wx, wy, ww, wh): (1, 1, 1, 1) for the RPN and RetinaNet, (10, 10, 5, 5) for the
    R-CNN box head. ``max_shape``: (h, w) or a tensor [N, 2] of (h, w) per roi; boxes are then
    clipped to x in [0, w], y in [0, h] (``clip_boxes_to_image``).
    """

    def __init__(self, weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
                 bbox_xform_clip: float = math.log(1000.0 / 16)):
        self.weights = tuple(float(w) for w in weights)
        self.bbox_xform_clip = bbox_xform_clip

    def encode(self, proposals: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        _inference_only("TorchvisionBoxCoder.encode")

    def decode(self, rois: torch.Tensor, deltas: torch.Tensor, max_shape=None, **_) -> torch.Tensor:
        num = deltas.shape[0]
        if num == 0:
            return deltas.new_zeros(deltas.shape)
        rois = rois.to(deltas.dtype)
        widths = rois[:, 2] - rois[:, 0]
        heights = rois[:, 3] - rois[:, 1]
        ctr_x = rois[:, 0] + 0.5 * widths
        ctr_y = rois[:, 1] + 0.5 * heights
        wx, wy, ww, wh = self.weights
        dx = deltas[:, 0::4] / wx
        dy = deltas[:, 1::4] / wy
        dw = torch.clamp(deltas[:, 2::4] / ww, max=self.bbox_xform_clip)
        dh = torch.clamp(deltas[:, 3::4] / wh, max=self.bbox_xform_clip)
        pred_ctr_x = dx * widths[:, None] + ctr_x[:, None]
        pred_ctr_y = dy * heights[:, None] + ctr_y[:, None]
        half_w = torch.tensor(0.5, dtype=deltas.dtype, device=deltas.device) * (torch.exp(dw) * widths[:, None])
        half_h = torch.tensor(0.5, dtype=deltas.dtype, device=deltas.device) * (torch.exp(dh) * heights[:, None])
        boxes = torch.stack([pred_ctr_x - half_w, pred_ctr_y - half_h, pred_ctr_x + half_w, pred_ctr_y + half_h],
                            dim=2)  # [N, C, 4]
        if max_shape is not None:
            if isinstance(max_shape, torch.Tensor):
                hw = max_shape.to(boxes.dtype).reshape(num, 1, 2)
                h, w = hw[..., 0:1], hw[..., 1:2]
                x = torch.minimum(boxes[..., 0::2].clamp(min=0), w)
                y = torch.minimum(boxes[..., 1::2].clamp(min=0), h)
            else:
                x = boxes[..., 0::2].clamp(min=0, max=max_shape[1])
                y = boxes[..., 1::2].clamp(min=0, max=max_shape[0])
            boxes = torch.stack([x, y], dim=-1).reshape(boxes.shape)
        return boxes.reshape(num, -1)


def resize_boxes_to_original(boxes: torch.Tensor, img_meta: dict) -> torch.Tensor:
    """Boxes [N, 4] in network-input pixels -> original-image pixels, as torchvision's
    ``transform.resize_boxes``: multiplied by float32 ``original / resized`` per axis."""
    resized_h, resized_w = img_meta["img_shape"][:2]
    orig_h, orig_w = img_meta["ori_shape"][:2]
    f32 = dict(dtype=torch.float32, device=boxes.device)
    ratio_h = torch.tensor(orig_h, **f32) / torch.tensor(resized_h, **f32)
    ratio_w = torch.tensor(orig_w, **f32) / torch.tensor(resized_w, **f32)
    x1, y1, x2, y2 = boxes.unbind(1)
    return torch.stack((x1 * ratio_w, y1 * ratio_h, x2 * ratio_w, y2 * ratio_h), dim=1)


def _remove_small(boxes: torch.Tensor, min_size: float) -> torch.Tensor:
    """Indices of boxes with both sides >= min_size (``box_ops.remove_small_boxes``)."""
    ws, hs = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return torch.where((ws >= min_size) & (hs >= min_size))[0]


def _nms_keep(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, iou: float,
              max_num: int) -> torch.Tensor:
    """Indices kept by class-wise NMS, by decreasing score, at most ``max_num``."""
    if boxes.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    _, keep = batched_nms(boxes, scores, labels, iou)
    return keep[:max_num]


