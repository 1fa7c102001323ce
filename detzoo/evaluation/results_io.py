"""Detection results <-> COCO results JSON (the format pycocotools' ``COCO.loadRes`` reads).

One entry per detection::

    {"image_id": int, "category_id": int, "bbox": [x, y, w, h], "score": float,
     "segmentation": {"size": [h, w], "counts": str}}      # only for mask results

``bbox`` is xywh with ``w = x2 - x1`` (no +1), as MMDetection's ``xyxy2xywh``.

Label -> ``category_id``: a model whose class names are the dataset's (MMDetection's convention)
maps label ``l`` to the dataset's ``l``-th category id. A model with other class names (e.g.
torchvision's 91-entry COCO list, where the label IS the COCO id) maps by name:
:func:`label_to_cat_ids`.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
from typing import Optional, Sequence

import numpy as np
import pycocotools.mask as mask_util
from pycocotools.coco import COCO
import torch

from detzoo.errors import DataError
from detzoo.utils.fileio import atomic_write_text
from detzoo.structures import DetResult

_REQUIRED_KEYS = ("image_id", "category_id", "score")
#: class names that stand for no category: torchvision's background (index 0) and the 'N/A' ids
#: COCO does not use (detzoo.models.torchvision_compat.TORCHVISION_COCO_CATEGORIES). Detections
#: with them are not written: pycocotools would ignore their category id anyway.
NO_CATEGORY_NAMES = ("__background__", "N/A")


def label_to_cat_ids(model_classes: Optional[Sequence[str]], dataset_classes: Sequence[str],
                     dataset_cat_ids: Sequence[int]) -> list[Optional[int]]:
    """COCO category id of each model label (None: the label's class is no dataset category).

    The model's class names equal to the dataset's (or None / empty): ``dataset_cat_ids`` as they are.
    Otherwise by name: label ``l`` -> the id of the dataset category named ``model_classes[l]``;
    torchvision's 91 COCO names on a COCO dataset give ``category_id == label``.
    """
    if len(dataset_classes) != len(dataset_cat_ids):
        raise DataError(f"{len(dataset_classes)} dataset class names but {len(dataset_cat_ids)} category ids")
    if not model_classes or tuple(model_classes) == tuple(dataset_classes):
        return list(dataset_cat_ids)
    by_name = dict(zip(dataset_classes, dataset_cat_ids))
    if len(model_classes) == len(dataset_classes) and not any(name in by_name for name in model_classes):
        # no name in common (e.g. a checkpoint without class names gets class_0, class_1, ...):
        # labels are positions in the dataset's categories, as MMDetection always assumes
        return list(dataset_cat_ids)
    return [by_name.get(name) for name in model_classes]


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


def result_to_coco_json(result: DetResult, img_id: int, cat_ids: Sequence[Optional[int]],
                        with_masks: bool = True,
                        class_names: Optional[Sequence[str]] = None) -> list[dict]:
    """COCO result entries for one image's detections (see module docstring).

    ``cat_ids[l]``: the category id of label ``l`` (:func:`label_to_cat_ids`), None when its
    class is no category: detections of a :data:`NO_CATEGORY_NAMES` class (``class_names[l]``)
    are left out, any other such label is a DataError naming the class.
    """
    num = len(result)
    if num == 0:
        return []
    labels = result.labels.detach().to("cpu", torch.long).numpy()
    bad = labels[(labels < 0) | (labels >= len(cat_ids))]
    if bad.size:
        raise DataError(f"image {img_id}: label {int(bad[0])} is outside the "
                        f"{len(cat_ids)} known categories")
    mapped = np.asarray([-1 if c is None else c for c in cat_ids], dtype=np.int64)[labels]
    keep = mapped >= 0
    for label in np.unique(labels[~keep]).tolist():
        name = class_names[label] if class_names is not None and label < len(class_names) else None
        if name not in NO_CATEGORY_NAMES:
            named = f" ('{name}')" if name is not None else ""
            raise DataError(f"image {img_id}: predicted label {label}{named} is not a category of the "
                            f"dataset; the model's class names must be dataset category names")
    boxes = result.boxes.detach().to("cpu", torch.float32).numpy().astype(np.float64)[keep]
    scores = result.scores.detach().to("cpu", torch.float32).numpy()[keep].tolist()
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1).tolist()
    categories = mapped[keep].tolist()
    entries = [dict(image_id=int(img_id), bbox=xywh[i], score=scores[i],
                    category_id=categories[i]) for i in range(len(categories))]
    if with_masks and result.masks is not None:
        masks = result.masks if keep.all() else result.masks[torch.from_numpy(keep).to(result.masks.device)]
        for entry, rle in zip(entries, encode_masks(masks)):
            entry["segmentation"] = rle
    return entries


def results_to_coco_json(results: Sequence[DetResult], img_ids: Sequence[int],
                         cat_ids: Sequence[Optional[int]],
                         class_names: Optional[Sequence[str]] = None) -> list[dict]:
    """Flatten per-image results into COCO result entries.

    results[i] belongs to COCO image ``img_ids[i]``; label ``l`` maps to ``cat_ids[l]`` (see
    :func:`result_to_coco_json` for None entries and ``class_names``).
    Entries carry ``segmentation`` (RLE, str counts) when the result has masks.
    """
    if len(results) != len(img_ids):
        raise DataError(f"{len(results)} results but {len(img_ids)} image ids")
    entries: list[dict] = []
    for result, img_id in zip(results, img_ids):
        entries.extend(result_to_coco_json(result, img_id, cat_ids, class_names=class_names))
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

