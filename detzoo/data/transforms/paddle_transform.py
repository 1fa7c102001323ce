"""PaddleDetection's (static / 0.x) ``ResizeImage`` as a pipeline step: one isotropic scale.

Facts from ``static/ppdet/data/transform/operators.py`` ``ResizeImage`` (``max_size != 0``):
``im_scale = target_size / short_side``; if ``np.round(im_scale * long_side) > max_size`` then
``im_scale = max_size / long_side``; the image is resized with
``cv2.resize(im, None, None, fx=im_scale, fy=im_scale, interpolation)`` (cv2 rounds the output
size itself), and ``im_info = float32 [im_scale * h, im_scale * w, im_scale]``: the *unrounded*
scaled sizes, which the RPN's clipping and size filter use (generate_proposals_op.cc). The
R-CNN head divides boxes by the one ``im_scale`` (bbox_head.py ``get_prediction``).

Here: ``scale_factor = float32 [s, s, s, s]`` (so every head divides both axes by ``s``) and
``results["im_info"]`` as Paddle's; keep ``im_info`` in ``Collect``'s meta_keys.
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import cv2
import numpy as np

from detzoo.errors import ConfigError, DataError
from .geometric import _CV2_INTERP

#: Collect meta keys for pipelines ending in PaddleResize (the heads read ``im_info``).
PADDLE_META_KEYS = ("filename", "img_id", "ori_shape", "img_shape", "pad_shape", "scale_factor",
                    "flip", "flip_direction", "im_info")


class PaddleResize:
    """Resize with Paddle's single ``im_scale`` (see module docstring).

    Args:
        target_size: short-side target (Paddle ``target_size``); a list picks one per sample
            (multi-scale training). None: the short edge of ``results["scale"]`` (set by
            ``MultiScaleFlipAug``, given as (long, short)).
        max_size: long-side limit (``max_size``); None: the long edge of ``results["scale"]``.
        interpolation: cv2 interpolation name (Paddle ``interp: 1`` is bilinear).
    """

    def __init__(self, target_size: Optional[Union[int, Sequence[int]]] = None,
                 max_size: Optional[int] = None, interpolation: str = "bilinear"):
        if interpolation not in _CV2_INTERP:
            raise ConfigError(f"PaddleResize: unknown interpolation {interpolation!r}; "
                              f"known: {', '.join(_CV2_INTERP)}")
        self.target_size = target_size
        self.max_size = max_size
        self.interpolation = interpolation

    def _sizes(self, results: dict):
        target, max_size = self.target_size, self.max_size
        if target is None or max_size is None:
            if "scale" not in results:
                raise ConfigError("PaddleResize: give target_size and max_size, or run it inside "
                                  "MultiScaleFlipAug (which sets results['scale'])")
            long_edge, short_edge = max(results["scale"]), min(results["scale"])
            target = short_edge if target is None else target
            max_size = long_edge if max_size is None else max_size
        if isinstance(target, (list, tuple)):
            from .compose import sample_rng
            target = target[int(sample_rng(results).integers(len(target)))]
        return float(target), float(max_size)

    def __call__(self, results: dict) -> dict:
        img = results["img"]
        height, width = img.shape[:2]
        if min(height, width) == 0:
            raise DataError(f"PaddleResize: {results.get('filename', 'image')}: empty image {img.shape}")
        target, max_size = self._sizes(results)
        im_scale = target / float(min(height, width))
        if np.round(im_scale * max(height, width)) > max_size:
            im_scale = max_size / float(max(height, width))
        for key in results.get("img_fields", ["img"]):
            out = cv2.resize(results[key], None, None, fx=im_scale, fy=im_scale,
                             interpolation=_CV2_INTERP[self.interpolation])
            results[key] = out[..., None] if results[key].ndim == 3 and out.ndim == 2 else out
        new_h, new_w = results["img"].shape[:2]
        scale = np.float32(im_scale)
        results["im_info"] = np.array([im_scale * height, im_scale * width, im_scale], dtype=np.float32)
        results["scale_factor"] = np.array([scale] * 4, dtype=np.float32)
        results["img_shape"] = results["img"].shape
        results["pad_shape"] = results["img"].shape
        results["keep_ratio"] = True
        for key in results.get("bbox_fields", []):
            boxes = results[key] * scale
            boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, new_w)
            boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, new_h)
            results[key] = boxes.astype(np.float32)
        if results.get("mask_fields"):
            from .geometric import _resize_masks
            for key in results["mask_fields"]:
                results[key] = _resize_masks(results[key], (new_w, new_h), new_w / width, new_h / height)
        return results

    def __repr__(self) -> str:
        return (f"PaddleResize(target_size={self.target_size}, max_size={self.max_size}, "
                f"interpolation={self.interpolation!r})")
