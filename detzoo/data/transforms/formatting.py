"""Steps that turn pipeline results into model inputs (MMDetection 2.x names).

``DefaultFormatBundle`` converts arrays to tensors; ``Collect`` keeps the model's keys and
gathers ``img_metas`` (the keys of docs/architecture.md by default). ``PackDetInputs`` is both
in one step, for 3.x-style configs.
"""
from __future__ import annotations

import numpy as np
import torch

from ...errors import DataError

# the img_metas contract of docs/architecture.md
DEFAULT_META_KEYS = ("filename", "img_id", "ori_shape", "img_shape", "pad_shape",
                     "scale_factor", "flip", "flip_direction")

_GT_KEYS = ("proposals", "gt_bboxes", "gt_bboxes_ignore", "gt_labels")


def image_to_tensor(img) -> torch.Tensor:
    """HxW or HxWxC array -> CxHxW tensor (dtype kept); tensors pass through."""
    if isinstance(img, torch.Tensor):
        return img
    if img.ndim == 2:
        img = img[..., None]
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


def _to_tensor(value):
    if isinstance(value, torch.Tensor):
        return value
    return torch.from_numpy(np.ascontiguousarray(value))


class DefaultFormatBundle:
    """img -> CxHxW tensor; gt_bboxes/gt_bboxes_ignore/gt_labels/proposals -> tensors;
    bitmap gt_masks -> uint8 tensor [n, H, W] (polygon masks stay lists of arrays)."""

    def __call__(self, results: dict) -> dict:
        if "img" in results:
            results["img"] = image_to_tensor(results["img"])
        for key in _GT_KEYS:
            if key in results:
                results[key] = _to_tensor(results[key])
        if isinstance(results.get("gt_masks"), np.ndarray):
            results["gt_masks"] = _to_tensor(results["gt_masks"])
        return results

    def __repr__(self) -> str:
        return "DefaultFormatBundle()"


class ImageToTensor:
    """Only converts the named images to CxHxW tensors (2.x test pipelines)."""

    def __init__(self, keys=("img",)):
        self.keys = tuple(keys)

    def __call__(self, results: dict) -> dict:
        for key in self.keys:
            results[key] = image_to_tensor(results[key])
        return results

    def __repr__(self) -> str:
        return f"ImageToTensor(keys={list(self.keys)})"


def _meta_value(results: dict, key: str):
    """A meta key, or the value that its absence means (the step that sets it did not run)."""
    if key in results:
        return results[key]
    fallbacks = {
        "img_id": lambda: -1,
        "flip": lambda: False,
        "flip_direction": lambda: None,
        "scale_factor": lambda: np.ones(4, dtype=np.float32),
        "pad_shape": lambda: results["img_shape"],
        "ori_filename": lambda: results.get("filename"),
    }
    if key in fallbacks:
        try:
            return fallbacks[key]()
        except KeyError:
            pass
    raise DataError(f"Collect: meta key {key!r} is missing from the results of "
                    f"{results.get('filename', '<no filename>')} (which step should set it?)")


class Collect:
    """Keep ``keys`` (e.g. img, gt_bboxes, gt_labels) and put ``meta_keys`` into ``img_metas``.

    Returns ``{key: results[key] for key in keys} | {"img_metas": {...}}``. A missing key is a
    DataError naming the image, except gt keys in test mode (ann_info absent) which are skipped.
    """

    def __init__(self, keys=("img", "gt_bboxes", "gt_labels"), meta_keys=DEFAULT_META_KEYS):
        self.keys = tuple(keys)
        self.meta_keys = tuple(meta_keys)

    def __call__(self, results: dict) -> dict:
        data = {"img_metas": {key: _meta_value(results, key) for key in self.meta_keys}}
        for key in self.keys:
            if key in results:
                data[key] = results[key]
            elif key.startswith("gt_") and "ann_info" not in results:
                continue
            else:
                raise DataError(f"Collect: key {key!r} is missing from the results of "
                                f"{results.get('filename', '<no filename>')}")
        return data

    def __repr__(self) -> str:
        return f"Collect(keys={list(self.keys)}, meta_keys={list(self.meta_keys)})"


class PackDetInputs:
    """``DefaultFormatBundle`` + ``Collect`` of img and every gt present (3.x-style last step)."""

    def __init__(self, meta_keys=DEFAULT_META_KEYS):
        self.meta_keys = tuple(meta_keys)
        self._format = DefaultFormatBundle()

    def __call__(self, results: dict) -> dict:
        results = self._format(results)
        keys = ["img"] + [k for k in ("gt_bboxes", "gt_labels", "gt_bboxes_ignore", "gt_masks",
                                      "proposals") if k in results]
        return Collect(keys, self.meta_keys)(results)

    def __repr__(self) -> str:
        return f"PackDetInputs(meta_keys={list(self.meta_keys)})"
