"""Detection results <-> COCO results JSON (the format pycocotools' ``COCO.loadRes`` reads).

One entry per detection::

    {"image_id": int, "category_id": int, "bbox": [x, y, w, h], "score": float,
     "segmentation": {"size": [h, w], "counts": str}}      # only for mask results

``bbox`` is xywh with ``w = x2 - x1`` (no +1), as MMDetection's ``xyxy2xywh``.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
from typing import Sequence

import numpy as np
import pycocotools.mask as mask_util
from pycocotools.coco import COCO
import torch

from detzoo.errors import DataError
from detzoo.utils.fileio import atomic_write_text
from detzoo.structures import DetResult

_REQUIRED_KEYS = ("image_id", "category_id", "score")


def encode_masks(masks: torch.Tensor, counts_as_str: bool = True) -> list[dict]:
    """bool [N, H, W] -> N compressed COCO RLEs. ``counts`` is str (JSON-serialisable) or, with
    ``counts_as_str=False``, the bytes pycocotools returns (MMDetection 2.x result pickles)."""
    array = masks.detach().to("cpu", torch.uint8).numpy()
    if len(array) == 0:
        return []
    # pycocotools wants a Fortran-ordered uint8 [H, W, N] array.
    rles = mask_util.encode(np.asfortranarray(array.transpose(1, 2, 0)))
    if counts_as_str:
        for rle in rles:
            rle["counts"] = rle["counts"].decode("ascii")
            rle["size"] = [int(s) for s in rle["size"]]
    return list(rles)


def result_to_coco_json(result: DetResult, img_id: int, cat_ids: Sequence[int],
                        with_masks: bool = True) -> list[dict]:
    """COCO result entries for one image's detections (see module docstring)."""
    num = len(result)
    if num == 0:
        return []
    boxes = result.boxes.detach().to("cpu", torch.float32).numpy().astype(np.float64)
    scores = result.scores.detach().to("cpu", torch.float32).numpy().tolist()
    labels = result.labels.detach().to("cpu", torch.long).numpy()
    bad = labels[(labels < 0) | (labels >= len(cat_ids))]
    if bad.size:
        raise DataError(f"image {img_id}: label {int(bad[0])} is outside the "
                        f"{len(cat_ids)} known categories")
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1).tolist()
    categories = np.asarray(cat_ids, dtype=np.int64)[labels].tolist()
    entries = [dict(image_id=int(img_id), bbox=xywh[i], score=scores[i],
                    category_id=categories[i]) for i in range(num)]
    if with_masks and result.masks is not None:
        for entry, rle in zip(entries, encode_masks(result.masks)):
            entry["segmentation"] = rle
    return entries


def results_to_coco_json(results: Sequence[DetResult], img_ids: Sequence[int],
                         cat_ids: Sequence[int]) -> list[dict]:
    """Flatten per-image results into COCO result entries.

    results[i] belongs to COCO image ``img_ids[i]``; label ``l`` maps to ``cat_ids[l]``.
    Entries carry ``segmentation`` (RLE, str counts) when the result has masks.
    """
    if len(results) != len(img_ids):
        raise DataError(f"{len(results)} results but {len(img_ids)} image ids")
    entries: list[dict] = []
    for result, img_id in zip(results, img_ids):
        entries.extend(result_to_coco_json(result, img_id, cat_ids))
    return entries


def save_results_json(path: str, dets: list[dict]) -> None:
    """Save COCO result entries (from :func:`results_to_coco_json`) atomically."""
    atomic_write_text(path, json.dumps(dets))


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def validate_results(dets, source: str, coco_gt=None) -> None:
    """Raise DataError naming ``source``, the entry index and the problem.

    With ``coco_gt`` (a pycocotools COCO) image and category ids are checked against it.
    """
    if not isinstance(dets, list):
        raise DataError(f"{source}: expected a JSON list of detections, got {type(dets).__name__}")
    img_ids = set(coco_gt.getImgIds()) if coco_gt is not None else None
    cat_ids = set(coco_gt.getCatIds()) if coco_gt is not None else None
    for index, entry in enumerate(dets):
        where = f"{source}: entry {index}"
        if not isinstance(entry, dict):
            raise DataError(f"{where}: expected an object, got {type(entry).__name__}")
        for key in _REQUIRED_KEYS:
            if key not in entry:
                raise DataError(f"{where}: missing key '{key}'")
        if "bbox" not in entry and "segmentation" not in entry:
            raise DataError(f"{where}: missing key 'bbox' (or 'segmentation')")
        if "bbox" in entry:
            bbox = entry["bbox"]
            if (not isinstance(bbox, (list, tuple)) or len(bbox) != 4
                    or not all(_is_number(v) for v in bbox)):
                raise DataError(f"{where}: 'bbox' must be 4 finite numbers [x, y, w, h], "
                                f"got {bbox!r}")
            if bbox[2] < 0 or bbox[3] < 0:
                raise DataError(f"{where}: 'bbox' has negative width or height: {bbox!r}")
        if "segmentation" in entry:
            seg = entry["segmentation"]
            if not (isinstance(seg, dict) and "counts" in seg and "size" in seg):
                raise DataError(f"{where}: 'segmentation' must be an RLE "
                                "{'size': [h, w], 'counts': str}")
        if not _is_number(entry["score"]):
            raise DataError(f"{where}: 'score' must be a finite number, got {entry['score']!r}")
        for key in ("image_id", "category_id"):
            if not isinstance(entry[key], (int, str)) or isinstance(entry[key], bool):
                raise DataError(f"{where}: '{key}' must be an integer, got {entry[key]!r}")
        if img_ids is not None and entry["image_id"] not in img_ids:
            raise DataError(f"{where}: image_id {entry['image_id']!r} is not in the "
                            "annotation file")
        if cat_ids is not None and entry["category_id"] not in cat_ids:
            raise DataError(f"{where}: category_id {entry['category_id']!r} is not in the "
                            "annotation file")


def load_results_json(path: str, coco_gt=None) -> list[dict]:
    """Load and validate a COCO results JSON file (optionally against ``coco_gt``)."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: results file not found")
    try:
        with open(path) as f:
            dets = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not valid JSON ({err})") from None
    validate_results(dets, path, coco_gt)
    return dets


def quiet_stdout(enabled: bool = True):
    """Swallow pycocotools' progress prints (it uses print, not logging)."""
    return contextlib.redirect_stdout(io.StringIO()) if enabled else contextlib.nullcontext()


def load_coco_gt(ann: "str | object", verbose: bool = False):
    """A pycocotools COCO from a path (quietly, DataError if unreadable) or pass one through."""
    if not isinstance(ann, (str, os.PathLike)):
        return ann
    path = os.fspath(ann)
    if not os.path.isfile(path):
        raise DataError(f"{path}: annotation file not found")
    try:
        with quiet_stdout(not verbose):
            coco = COCO(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not valid JSON ({err})") from None
    except (KeyError, TypeError, AssertionError) as err:
        raise DataError(f"{path}: not a COCO annotation file ({type(err).__name__}: {err})") \
            from None
    return coco

