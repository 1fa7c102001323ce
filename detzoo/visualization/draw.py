"""Draw detections / ground truth on BGR uint8 images with OpenCV.

Boxes are x1y1x2y2 in the image's pixels; labels are 0-based indices into ``class_names``; each
class gets its fixed colour from :mod:`detzoo.visualization.palette`. Box edges use plain
(non-antialiased) lines so edge pixels carry exactly the class colour; labels sit on a filled
box in the class colour just above the box (inside it when the box touches the top border).
"""
from __future__ import annotations

import math
import os
from typing import Optional, Sequence

import cv2
import numpy as np
import torch

from detzoo.errors import DataError
from detzoo.utils.fileio import atomic_write_bytes
from detzoo.structures import DetResult
from detzoo.visualization.palette import get_color

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def auto_font_scale(height: int, width: int) -> float:
    """Font scale growing with the image: 0.5 at about 600x600, within [0.35, 3]."""
    return float(min(max(0.5 * math.sqrt(height * width) / 600.0, 0.35), 3.0))


def _to_numpy(values) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return np.asarray(values)


def _class_name(label: int, class_names: Optional[Sequence[str]]) -> str:
    if class_names is not None and 0 <= label < len(class_names):
        return str(class_names[label])
    return str(label)


def _check_image(img: np.ndarray) -> None:
    if not (isinstance(img, np.ndarray) and img.dtype == np.uint8 and img.ndim == 3
            and img.shape[2] == 3):
        shape = getattr(img, "shape", None)
        raise DataError(f"expected a HxWx3 uint8 BGR image, got {type(img).__name__} "
                        f"shape {shape} dtype {getattr(img, 'dtype', None)}")


def _draw_label(img: np.ndarray, text: str, x1: int, y1: int, color, font_scale: float) -> None:
    """Text on a filled ``color`` box whose bottom-left is (x1, y1), kept inside the image."""
    text_thickness = max(1, int(round(font_scale * 2)))
    (text_w, text_h), baseline = cv2.getTextSize(text, _FONT, font_scale, text_thickness)
    height, width = img.shape[:2]
    box_h = text_h + baseline + 2
    top = y1 - box_h
    if top < 0:  # no room above the box: put the label just inside it
        top = max(y1, 0)
    left = min(max(x1, 0), max(width - text_w - 2, 0))
    cv2.rectangle(img, (left, top), (left + text_w + 1, top + box_h - 1), color, cv2.FILLED)
    # Dark text on light colours, white on dark (ITU-R 601 luma of the BGR colour).
    luma = 0.114 * color[0] + 0.587 * color[1] + 0.299 * color[2]
    text_color = (0, 0, 0) if luma > 150 else (255, 255, 255)
    cv2.putText(img, text, (left + 1, top + text_h + 1), _FONT, font_scale, text_color,
                text_thickness, cv2.LINE_AA)


def _draw_boxes(img: np.ndarray, boxes: np.ndarray, labels: np.ndarray, texts: Sequence[str],
                thickness: int, font_scale: float) -> None:
    # clipped just outside the image first: a box far off the image (an untrained model's, or
    # inf/nan) must neither overflow cv2's int coordinates nor be drawn
    height, width = img.shape[:2]
    limits = np.array([width + thickness, height + thickness] * 2, dtype=np.float64)
    clipped = np.clip(np.nan_to_num(np.asarray(boxes, dtype=np.float64)), -thickness - 1, limits)
    corners = np.round(clipped).astype(np.int64).tolist()
    for (x1, y1, x2, y2), label in zip(corners, labels.tolist()):
        cv2.rectangle(img, (x1, y1), (x2, y2), get_color(label), thickness, cv2.LINE_8)
    # Labels after all boxes so no box edge crosses a label.
    for (x1, y1, _, _), label, text in zip(corners, labels.tolist(), texts):
        _draw_label(img, text, x1, y1, get_color(label), font_scale)


def _blend_masks(img: np.ndarray, masks: np.ndarray, labels: np.ndarray, alpha: float) -> None:
    """Blend bool [N, H, W] masks in their class colours; earlier (higher-score) ones on top."""
    for mask, label in zip(masks[::-1], labels[::-1].tolist()):
        color = np.array(get_color(label), dtype=np.float32)
        pixels = img[mask].astype(np.float32)
        img[mask] = np.clip(np.rint(pixels * (1.0 - alpha) + color * alpha), 0, 255)


def draw_detections(img_bgr: np.ndarray, result: DetResult,
                    class_names: Optional[Sequence[str]] = None, score_thr: float = 0.3,
                    mask_alpha: float = 0.5, thickness: int = 2,
                    font_scale: Optional[float] = None) -> np.ndarray:
    """A copy of ``img_bgr`` (HxWx3 uint8) with the detections scoring > ``score_thr``.

    Draws masks (blended with ``mask_alpha``), boxes, and "name 0.87" labels. ``font_scale``
    None picks one from the image size (:func:`auto_font_scale`).
    """
    _check_image(img_bgr)
    out = img_bgr.copy()
    scores = _to_numpy(result.scores).reshape(-1)
    # Strict, as MMDetection's imshow_det_bboxes, and in the scores' own precision (a float32
    # 0.3 is not above a threshold of 0.3).
    keep = scores > np.asarray(score_thr, dtype=scores.dtype)
    boxes = _to_numpy(result.boxes).reshape(-1, 4)[keep]
    labels = _to_numpy(result.labels).astype(np.int64).reshape(-1)[keep]
    scores = scores[keep]
    if result.masks is not None and keep.any():
        masks = _to_numpy(result.masks)[keep].astype(bool)
        _blend_masks(out, masks, labels, mask_alpha)
    texts = [f"{_class_name(l, class_names)} {s:.2f}"
             for l, s in zip(labels.tolist(), scores.tolist())]
    scale = auto_font_scale(*out.shape[:2]) if font_scale is None else font_scale
    _draw_boxes(out, boxes, labels, texts, thickness, scale)
    return out


def draw_ground_truth(img_bgr: np.ndarray, boxes, labels,
                      class_names: Optional[Sequence[str]] = None, thickness: int = 2,
                      font_scale: Optional[float] = None, masks=None,
                      mask_alpha: float = 0.5) -> np.ndarray:
    """A copy of ``img_bgr`` with ground-truth boxes [n, 4] xyxy and 0-based labels [n], and
    optionally instance ``masks`` (bool/uint8 [n, H, W], the image's size) blended in."""
    _check_image(img_bgr)
    out = img_bgr.copy()
    boxes = _to_numpy(boxes).reshape(-1, 4)
    labels = _to_numpy(labels).astype(np.int64).reshape(-1)
    if len(boxes) != len(labels):
        raise DataError(f"{len(boxes)} ground-truth boxes but {len(labels)} labels")
    if masks is not None and len(labels):
        masks = _to_numpy(masks).astype(bool)
        if masks.shape != (len(labels),) + out.shape[:2]:
            raise DataError(f"ground-truth masks of shape {masks.shape} do not match {len(labels)} "
                            f"instances on a {out.shape[0]}x{out.shape[1]} image")
        _blend_masks(out, masks, labels, mask_alpha)
    texts = [_class_name(l, class_names) for l in labels.tolist()]
    scale = auto_font_scale(*out.shape[:2]) if font_scale is None else font_scale
    _draw_boxes(out, boxes, labels, texts, thickness, scale)
    return out


def imwrite_atomic(path: str, img: np.ndarray) -> None:
    """Encode ``img`` by the extension of ``path`` and write it via a temp file + rename."""
    ext = os.path.splitext(path)[1].lower()
    try:
        ok, buffer = cv2.imencode(ext, img)
    except cv2.error:
        ok = False
    if not ok:
        raise DataError(f"{path}: cannot encode an image with extension '{ext}' "
                        "(use .jpg, .png, .bmp, ...)")
    atomic_write_bytes(path, buffer.tobytes())
