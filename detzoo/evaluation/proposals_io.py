"""Proposal files (for Fast R-CNN) and MMDetection-style pickled results.

A proposal file is MMDetection 2.x's format: a pickle of a list, in dataset order (the order of
the annotation file's ``images``), holding per image a float32 ndarray [N, 5] (x1, y1, x2, y2,
score) in original-image pixels, sorted by score (what ``tools/test.py --out x.pkl`` writes for
an RPN). ``.json`` files hold the same as text: a list with per image a list of
[x1, y1, x2, y2, score] rows.

Pickles can run arbitrary code when loaded, so :func:`load_proposals` uses an unpickler that
only rebuilds numpy arrays: any other global named in the file is refused before it is imported.
"""
from __future__ import annotations

import json
import os
import pickle
from typing import Sequence, Union

import numpy as np
import torch

from detzoo.errors import DataError
from detzoo.structures import DetResult
from detzoo.utils.fileio import atomic_open, atomic_write_text, read_json
from detzoo.utils.safe_pickle import RestrictedUnpickler
from .results_io import encode_masks

ProposalLike = Union[DetResult, np.ndarray, torch.Tensor]


def _as_array(item: ProposalLike, where: str) -> np.ndarray:
    """One image's proposals -> float32 [N, 5] (a missing score column becomes ones)."""
    if isinstance(item, DetResult):
        boxes = item.boxes.detach().to("cpu", torch.float32).numpy()
        scores = item.scores.detach().to("cpu", torch.float32).numpy()
        return np.concatenate([boxes.reshape(-1, 4), scores.reshape(-1, 1)], axis=1)
    if isinstance(item, torch.Tensor):
        item = item.detach().to("cpu", torch.float32).numpy()
    array = np.asarray(item, dtype=np.float32)
    if array.size == 0:
        return np.zeros((0, 5), dtype=np.float32)
    if array.ndim != 2 or array.shape[1] not in (4, 5):
        raise DataError(f"{where}: proposals must be an [N, 4] or [N, 5] array, got shape "
                        f"{tuple(array.shape)}")
    if array.shape[1] == 4:
        array = np.concatenate([array, np.ones((array.shape[0], 1), np.float32)], axis=1)
    return np.ascontiguousarray(array)


def save_proposals(path: str | os.PathLike, results: Sequence[ProposalLike]) -> None:
    """Write per-image proposals (DetResults of an RPN, or [N, 4|5] arrays/tensors) atomically.

    ``.json``: a list of per-image lists of [x1, y1, x2, y2, score]; anything else: MMDetection's
    pickle (a list of float32 [N, 5] ndarrays, pickle protocol 2 as mmcv writes it).
    """
    path = os.fspath(path)
    arrays = [_as_array(r, f"{path}: image {i}") for i, r in enumerate(results)]
    if path.lower().endswith(".json"):
        atomic_write_text(path, json.dumps([a.tolist() for a in arrays]))
        return
    with atomic_open(path, "wb") as f:
        pickle.dump(arrays, f, protocol=2)


def _read_pickle(path: str):
    with open(path, "rb") as f:
        try:
            return RestrictedUnpickler(f, lambda module, name: DataError(
                f"{path}: refused to load: the pickle names '{module}.{name}', but a proposal file may "
                "only hold numpy arrays (loading it could run code); MMDetection 3.x DumpProposals "
                "dicts are not supported, convert them to a list of [N, 5] arrays")).load()
        except DataError:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
                IndexError, KeyError, ImportError) as exc:
            raise DataError(f"{path}: not a readable proposal pickle ({type(exc).__name__}: "
                            f"{exc})") from None


def _check_image(value, path: str, index: int) -> np.ndarray:
    where = f"{path}: image {index}"
    if isinstance(value, np.ndarray):
        if not (np.issubdtype(value.dtype, np.floating) or np.issubdtype(value.dtype, np.integer)):
            raise DataError(f"{where}: proposals must be numbers, got an array of dtype {value.dtype}")
    elif not isinstance(value, (list, tuple)):
        raise DataError(f"{where}: expected an [N, 5] array (or a list of rows), got "
                        f"{type(value).__name__}")
    try:
        array = np.asarray(value, dtype=np.float32)
    except (ValueError, TypeError):
        raise DataError(f"{where}: rows must all be lists of 4 or 5 numbers") from None
    if array.size == 0:
        return np.zeros((0, 5), dtype=np.float32)
    if array.ndim != 2 or array.shape[1] not in (4, 5):
        raise DataError(f"{where}: proposals must have shape [N, 5] (x1, y1, x2, y2, score) or "
                        f"[N, 4], got {tuple(array.shape)}")
    if not np.isfinite(array).all():
        row = int(np.flatnonzero(~np.isfinite(array).all(axis=1))[0])
        raise DataError(f"{where}: row {row} is not finite: {array[row].tolist()}")
    if (array[:, 2] < array[:, 0]).any() or (array[:, 3] < array[:, 1]).any():
        row = int(np.flatnonzero((array[:, 2] < array[:, 0]) | (array[:, 3] < array[:, 1]))[0])
        raise DataError(f"{where}: row {row} is not an x1, y1, x2, y2 box (x2 < x1 or y2 < y1): "
                        f"{array[row].tolist()}")
    return np.ascontiguousarray(array)


def load_proposals(path: str | os.PathLike) -> list[np.ndarray]:
    """Read a proposal file (.pkl from MMDetection/detzoo, or .json): per image a float32
    [N, 5] (or [N, 4]) array, in the file's order. Every problem is a DataError naming the file
    (and the image index). Pickles are read without running code (see the module doc)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(f"proposal file not found: {path}")
    data = read_json(path) if path.lower().endswith(".json") else _read_pickle(path)
    if not isinstance(data, (list, tuple)):
        raise DataError(f"{path}: expected a list with one proposal array per image, got "
                        f"{type(data).__name__}")
    return [_check_image(value, path, i) for i, value in enumerate(data)]


def result_to_mmdet_lists(result: DetResult, num_classes: int):
    """One image in MMDetection 2.x's test output format: per class a float32 [n, 5] array
    (x1, y1, x2, y2, score); mask models give (that list, per class a list of RLE dicts)."""
    dets = _as_array(result, "result")
    labels = result.labels.detach().to("cpu").numpy()
    bad = labels[(labels < 0) | (labels >= num_classes)]
    if bad.size:
        raise DataError(f"label {int(bad[0])} is outside the {num_classes} classes")
    bbox_lists = [dets[labels == c] for c in range(num_classes)]
    if result.masks is None:
        return bbox_lists
    rles = encode_masks(result.masks, counts_as_str=False)  # bytes, as mmdet's encode_mask_results
    segm_lists = [[rles[i] for i in np.flatnonzero(labels == c)] for c in range(num_classes)]
    return bbox_lists, segm_lists


def save_mmdet_results(path: str | os.PathLike, results: Sequence[DetResult], num_classes: int) -> None:
    """Pickle detections as MMDetection 2.x ``tools/test.py --out x.pkl`` does (atomically):
    a list (dataset order) of :func:`result_to_mmdet_lists` per image."""
    converted = [result_to_mmdet_lists(r, num_classes) for r in results]
    with atomic_open(path, "wb") as f:
        pickle.dump(converted, f, protocol=2)
