"""Geometric pipeline steps: Resize, RandomFlip, Pad (MMDetection 2.x / mmcv semantics).

Every step transforms the image in ``results['img']`` and all boxes named in
``results['bbox_fields']`` and masks named in ``results['mask_fields']``. Masks are either uint8
bitmaps [n, H, W] or, per instance, lists of float32 polygon arrays (x0, y0, x1, y1, ...).
"""
from __future__ import annotations

import cv2
import numpy as np

from ...errors import ConfigError
from .compose import sample_rng

_CV2_INTERP = {
    "nearest": cv2.INTER_NEAREST,
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
    "lanczos": cv2.INTER_LANCZOS4,
}


def rescale_size(width: int, height: int, scale) -> tuple[tuple[int, int], float]:
    """mmcv ``rescale_size``: the (new_w, new_h) that fits ``scale`` keeping the aspect ratio.

    ``scale`` is a number (the factor itself) or a pair of edge limits: the factor is
    min(max(scale) / long edge, min(scale) / short edge); sizes round with int(x * f + 0.5).
    """
    if isinstance(scale, (int, float)):
        if scale <= 0:
            raise ConfigError(f"Resize: scale factor must be positive, got {scale}")
        factor = float(scale)
    else:
        long_limit, short_limit = max(scale), min(scale)
        factor = min(long_limit / max(height, width), short_limit / min(height, width))
    return (int(width * factor + 0.5), int(height * factor + 0.5)), factor


def imresize(img: np.ndarray, size: tuple[int, int], interpolation: str = "bilinear") -> np.ndarray:
    """cv2.resize to (new_w, new_h); keeps a trailing channel axis of size 1 like the input."""
    out = cv2.resize(img, size, interpolation=_CV2_INTERP[interpolation])
    if img.ndim == 3 and out.ndim == 2:
        out = out[..., None]
    return out


def _as_scale_list(scale):
    if scale is None:
        return None
    if isinstance(scale, (list, tuple)) and len(scale) and isinstance(scale[0], (list, tuple)):
        return [tuple(s) for s in scale]
    return [tuple(scale)]


class Resize:
    """Resize the image, boxes and masks (MMDetection 2.x ``Resize``; 3.x's ``scale`` accepted).

    img_scale: (long, short) edge limits when keep_ratio, else the exact (w, h); or a list of
        such scales to sample from: ``multiscale_mode='range'`` draws the long and the short edge
        uniformly between the extremes of two scales, 'value' picks one of the list.
    ratio_range: with a single scale, multiply it by a ratio drawn from [low, high].
    Without img_scale the scale comes from ``results['scale']`` (set by MultiScaleFlipAug).

    Sets img_shape, pad_shape, scale (the chosen one), keep_ratio and scale_factor
    = float32 [w_scale, h_scale, w_scale, h_scale], computed from the real new/old sizes.
    Boxes are multiplied by scale_factor and clipped to [0, W] x [0, H] of the new image.
    """

    def __init__(self, img_scale=None, multiscale_mode: str = "range", ratio_range=None,
                 keep_ratio: bool = True, interpolation: str = "bilinear", backend: str = "cv2",
                 bbox_clip_border: bool = True, scale=None):
        if img_scale is not None and scale is not None:
            raise ConfigError("Resize: give img_scale (2.x name) or scale (3.x name), not both")
        self.img_scale = _as_scale_list(img_scale if img_scale is not None else scale)
        if multiscale_mode not in ("range", "value"):
            raise ConfigError(f"Resize: multiscale_mode must be 'range' or 'value', "
                              f"got {multiscale_mode!r}")
        if ratio_range is not None and self.img_scale is not None and len(self.img_scale) != 1:
            raise ConfigError("Resize: ratio_range needs exactly one img_scale")
        if multiscale_mode == "range" and self.img_scale and len(self.img_scale) > 2:
            raise ConfigError("Resize: multiscale_mode='range' takes two scales (the extremes)")
        if interpolation not in _CV2_INTERP:
            raise ConfigError(f"Resize: unknown interpolation {interpolation!r}; "
                              f"known: {', '.join(_CV2_INTERP)}")
        if backend != "cv2":
            raise ConfigError(f"Resize: only backend='cv2' is supported, got {backend!r}")
        self.multiscale_mode = multiscale_mode
        self.ratio_range = None if ratio_range is None else tuple(ratio_range)
        self.keep_ratio = keep_ratio
        self.interpolation = interpolation
        self.backend = backend
        self.bbox_clip_border = bbox_clip_border

    def _choose_scale(self, results: dict):
        scales = self.img_scale
        rng = sample_rng(results)
        if self.ratio_range is not None:
            low, high = self.ratio_range
            ratio = rng.random() * (high - low) + low
            return int(scales[0][0] * ratio), int(scales[0][1] * ratio)
        if len(scales) == 1:
            return scales[0]
        if self.multiscale_mode == "value":
            return scales[int(rng.integers(len(scales)))]
        long_edges = [max(s) for s in scales]
        short_edges = [min(s) for s in scales]
        long_edge = int(rng.integers(min(long_edges), max(long_edges) + 1))
        short_edge = int(rng.integers(min(short_edges), max(short_edges) + 1))
        return long_edge, short_edge

    def __call__(self, results: dict) -> dict:
        if "scale" not in results:
            if self.img_scale is None:
                raise ConfigError("Resize: no img_scale given and results has no 'scale'")
            results["scale"] = self._choose_scale(results)
        scale = results["scale"]
        height, width = results["img"].shape[:2]
        if self.keep_ratio or isinstance(scale, (int, float)):
            new_size, _ = rescale_size(width, height, scale)
        else:
            new_size = (int(scale[0]), int(scale[1]))
        for key in results.get("img_fields", ["img"]):
            results[key] = imresize(results[key], new_size, self.interpolation)
        new_w, new_h = new_size
        # mmdet recomputes the factors from the actual sizes ("minor difference" comment in
        # mmdet/datasets/pipelines/transforms.py), separately for w and h
        w_scale, h_scale = new_w / width, new_h / height
        results["scale_factor"] = np.array([w_scale, h_scale, w_scale, h_scale], dtype=np.float32)
        results["img_shape"] = results["img"].shape
        results["pad_shape"] = results["img"].shape
        results["keep_ratio"] = self.keep_ratio
        for key in results.get("bbox_fields", []):
            boxes = results[key] * results["scale_factor"]
            if self.bbox_clip_border:
                boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, new_w)
                boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, new_h)
            results[key] = boxes.astype(np.float32)
        for key in results.get("mask_fields", []):
            results[key] = _resize_masks(results[key], new_size, w_scale, h_scale)
        return results

    def __repr__(self) -> str:
        return (f"Resize(img_scale={self.img_scale}, multiscale_mode={self.multiscale_mode!r}, "
                f"ratio_range={self.ratio_range}, keep_ratio={self.keep_ratio}, "
                f"interpolation={self.interpolation!r}, bbox_clip_border={self.bbox_clip_border})")


def _resize_masks(masks, new_size, w_scale, h_scale):
    if isinstance(masks, np.ndarray):
        new_w, new_h = new_size
        if len(masks) == 0:
            return np.zeros((0, new_h, new_w), dtype=masks.dtype)
        # mmdet BitmapMasks.rescale: nearest-neighbour, same target size as the image
        return np.stack([cv2.resize(m, new_size, interpolation=cv2.INTER_NEAREST) for m in masks])
    factors = np.array([w_scale, h_scale], dtype=np.float32)
    return [[(p.reshape(-1, 2) * factors).reshape(-1) for p in polys] for polys in masks]


_FLIP_DIRECTIONS = ("horizontal", "vertical", "diagonal")


def flip_boxes(boxes: np.ndarray, img_shape, direction: str) -> np.ndarray:
    """Mirror xyxy boxes in an image of ``img_shape`` (h, w, ...): x1' = w - x2, x2' = w - x1."""
    height, width = img_shape[:2]
    flipped = boxes.copy()
    if direction in ("horizontal", "diagonal"):
        flipped[:, 0] = width - boxes[:, 2]
        flipped[:, 2] = width - boxes[:, 0]
    if direction in ("vertical", "diagonal"):
        flipped[:, 1] = height - boxes[:, 3]
        flipped[:, 3] = height - boxes[:, 1]
    return flipped


def _flip_array(arr: np.ndarray, direction: str, h_axis: int) -> np.ndarray:
    axes = {"horizontal": (h_axis + 1,), "vertical": (h_axis,),
            "diagonal": (h_axis, h_axis + 1)}[direction]
    return np.ascontiguousarray(np.flip(arr, axis=axes))


def _flip_masks(masks, img_shape, direction):
    if isinstance(masks, np.ndarray):
        return _flip_array(masks, direction, h_axis=1)
    height, width = img_shape[:2]
    out = []
    for polys in masks:
        flipped = []
        for p in polys:
            p = p.copy()
            if direction in ("horizontal", "diagonal"):
                p[0::2] = width - p[0::2]
            if direction in ("vertical", "diagonal"):
                p[1::2] = height - p[1::2]
            flipped.append(p)
        out.append(flipped)
    return out


class RandomFlip:
    """Flip the image, boxes and masks with probability ``flip_ratio``.

    If results already holds 'flip' (set by MultiScaleFlipAug), that decision is used as is,
    so ``RandomFlip()`` inside a test-time MultiScaleFlipAug never flips at random;
    flip_ratio=None or 0 means "flip only when told". Sets flip and flip_direction (None when
    not flipped). The draw comes from ``sample_rng(results)`` (reproducible under a seed).
    """

    def __init__(self, flip_ratio: float | None = 0.5, direction: str = "horizontal"):
        if flip_ratio is not None and not 0 <= flip_ratio <= 1:
            raise ConfigError(f"RandomFlip: flip_ratio must be in [0, 1], got {flip_ratio}")
        if direction not in _FLIP_DIRECTIONS:
            raise ConfigError(f"RandomFlip: direction must be one of {_FLIP_DIRECTIONS}, "
                              f"got {direction!r}")
        self.flip_ratio = flip_ratio
        self.direction = direction

    def __call__(self, results: dict) -> dict:
        if "flip" not in results:
            ratio = self.flip_ratio or 0.0
            results["flip"] = bool(ratio > 0 and sample_rng(results).random() < ratio)
        if not results["flip"]:
            results["flip_direction"] = None
            return results
        direction = results.get("flip_direction") or self.direction
        results["flip_direction"] = direction
        for key in results.get("img_fields", ["img"]):
            results[key] = _flip_array(results[key], direction, h_axis=0)
        for key in results.get("bbox_fields", []):
            results[key] = flip_boxes(results[key], results["img_shape"], direction)
        for key in results.get("mask_fields", []):
            results[key] = _flip_masks(results[key], results["img_shape"], direction)
        return results

    def __repr__(self) -> str:
        return f"RandomFlip(flip_ratio={self.flip_ratio}, direction={self.direction!r})"


class Pad:
    """Pad the image (and masks) on the bottom/right to ``size`` (h, w) or to a multiple of
    ``size_divisor``. pad_val: a number for every channel, or dict(img=..., masks=...).

    Sets pad_shape, pad_fixed_size, pad_size_divisor.
    """

    def __init__(self, size=None, size_divisor: int | None = None, pad_to_square: bool = False,
                 pad_val=0):
        if (size is None) == (size_divisor is None) and not pad_to_square:
            raise ConfigError("Pad: give exactly one of size and size_divisor")
        if not isinstance(pad_val, dict):
            pad_val = dict(img=pad_val, masks=0)
        self.size = None if size is None else tuple(size)
        self.size_divisor = size_divisor
        self.pad_to_square = pad_to_square
        self.pad_val = pad_val

    def _target_shape(self, height: int, width: int) -> tuple[int, int]:
        if self.pad_to_square:
            side = max(height, width)
            height = width = side
        if self.size is not None:
            return self.size
        if self.size_divisor:
            d = self.size_divisor
            return -(-height // d) * d, -(-width // d) * d
        return height, width

    def __call__(self, results: dict) -> dict:
        height, width = results["img"].shape[:2]
        target = self._target_shape(height, width)
        for key in results.get("img_fields", ["img"]):
            results[key] = pad_image(results[key], target, self.pad_val.get("img", 0))
        results["pad_shape"] = results["img"].shape
        results["pad_fixed_size"] = self.size
        results["pad_size_divisor"] = self.size_divisor
        for key in results.get("mask_fields", []):
            masks = results[key]
            if isinstance(masks, np.ndarray):
                masks = np.moveaxis(masks, 0, -1)
                masks = pad_image(masks, target, self.pad_val.get("masks", 0))
                results[key] = np.ascontiguousarray(np.moveaxis(masks, -1, 0))
        return results

    def __repr__(self) -> str:
        return (f"Pad(size={self.size}, size_divisor={self.size_divisor}, "
                f"pad_to_square={self.pad_to_square}, pad_val={self.pad_val})")


def pad_image(img: np.ndarray, shape, pad_val=0) -> np.ndarray:
    """Pad bottom/right to ``shape`` (h, w); pad_val: one number, or one per channel."""
    height, width = img.shape[:2]
    target_h, target_w = int(shape[0]), int(shape[1])
    if target_h < height or target_w < width:
        raise ConfigError(f"Pad: image of size {height}x{width} is larger than the pad size "
                          f"{target_h}x{target_w}")
    out = np.empty((target_h, target_w) + img.shape[2:], dtype=img.dtype)
    out[...] = np.asarray(pad_val, dtype=img.dtype)
    out[:height, :width] = img
    return out
