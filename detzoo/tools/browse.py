"""Draw a dataset's ground truth as the model sees it (MMDetection ``browse_dataset.py``).

``train``: each image goes through the config's whole training pipeline (resize, flip, crop,
photometric distortion, normalisation, padding ...); the normalised tensor is mapped back to a
BGR picture with the pipeline's ``Normalize`` step (``img = x * std + mean``, then RGB -> BGR when
``to_rgb``), cropped to ``img_shape`` (padding removed), and the boxes, labels and masks the
model would be trained on are drawn on it. ``val``: the validation annotations drawn on the
original images (the test pipeline loads no annotations).
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Callable, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

from detzoo.errors import ConfigError, DataError

__all__ = ["find_normalization", "denormalize_image", "masks_to_bitmaps", "browse_dataset"]


def _step_type_name(step) -> str:
    step_type = step.get("type") if isinstance(step, dict) else type(step)
    return step_type if isinstance(step_type, str) else getattr(step_type, "__name__", str(step_type))


def find_normalization(pipeline: Sequence, cfg=None) -> Optional[Tuple[np.ndarray, np.ndarray, bool]]:
    """``(mean, std, to_rgb)`` of the pipeline's ``Normalize`` step (its dict or object), else the
    config's top-level ``img_norm_cfg``; None when the pipeline does not normalise."""
    for step in pipeline:
        if _step_type_name(step) == "Normalize":
            src = step if isinstance(step, dict) else vars(step)
            return (np.asarray(src["mean"], np.float32), np.asarray(src["std"], np.float32),
                    bool(src.get("to_rgb", True)))
        if _step_type_name(step) == "MultiScaleFlipAug":
            inner = step.get("transforms") if isinstance(step, dict) else getattr(step, "transforms", None)
            found = find_normalization(inner or [], None)
            if found:
                return found
    norm = (cfg or {}).get("img_norm_cfg") if cfg is not None else None
    if norm:
        return (np.asarray(norm["mean"], np.float32), np.asarray(norm["std"], np.float32),
                bool(norm.get("to_rgb", True)))
    return None


def denormalize_image(img, norm: Optional[Tuple[np.ndarray, np.ndarray, bool]]) -> np.ndarray:
    """A pipeline image (tensor ``[3, H, W]`` or array ``HxWx3``, normalised with ``norm``) ->
    ``HxWx3`` uint8 BGR."""
    if isinstance(img, torch.Tensor):
        img = img.detach().cpu().numpy()
        img = img.transpose(1, 2, 0) if img.ndim == 3 and img.shape[0] == 3 else img
    img = np.asarray(img, dtype=np.float32)
    if img.ndim != 3 or img.shape[2] != 3:
        raise DataError(f"expected a 3-channel image after the pipeline, got shape {img.shape}")
    if norm is not None:
        mean, std, to_rgb = norm
        img = img * std.reshape(1, 1, 3) + mean.reshape(1, 1, 3)
        if to_rgb:  # the pipeline turned BGR into RGB before normalising: turn it back
            img = img[:, :, ::-1]
    return np.ascontiguousarray(np.clip(np.rint(img), 0, 255).astype(np.uint8))


def masks_to_bitmaps(gt_masks, height: int, width: int) -> np.ndarray:
    """Bitmaps (uint8 ``[n, H', W']`` tensor/array) or polygons (per instance a list of flat
    ``[x0, y0, x1, y1, ...]`` arrays) -> bool ``[n, height, width]``."""
    if isinstance(gt_masks, (torch.Tensor, np.ndarray)):
        masks = gt_masks.detach().cpu().numpy() if isinstance(gt_masks, torch.Tensor) else gt_masks
        masks = masks.astype(bool)
        out = np.zeros((masks.shape[0], height, width), dtype=bool)
        h, w = min(height, masks.shape[1]), min(width, masks.shape[2])
        out[:, :h, :w] = masks[:, :h, :w]
        return out
    out = np.zeros((len(gt_masks), height, width), dtype=np.uint8)
    for i, polygons in enumerate(gt_masks):
        pts = [np.round(np.asarray(p, np.float64).reshape(-1, 2)).astype(np.int32) for p in polygons]
        if pts:
            cv2.fillPoly(out[i], pts, 1)
    return out.astype(bool)


def _out_name(filename: str, index: int, used: set) -> str:
    base = osp.basename(filename) or f"{index:06d}.jpg"
    stem, ext = osp.splitext(base)
    if ext.lower() not in (".jpg", ".jpeg", ".png", ".bmp"):
        ext = ".jpg"
    name = stem + ext
    if name in used:  # the same image drawn twice (repeated datasets): keep both
        name = f"{stem}_{index}{ext}"
    used.add(name)
    return name


def _train_sample(dataset, index: int, seed: int, norm):
    rng = np.random.default_rng(seed + index)
    data = dataset.prepare(index, rng)
    if data is None:
        return None
    meta = data["img_metas"]
    meta = meta.data if hasattr(meta, "data") else meta
    img = denormalize_image(data["img"], norm)
    h, w = meta["img_shape"][:2] if meta.get("img_shape") else img.shape[:2]
    img = np.ascontiguousarray(img[:h, :w])
    masks = masks_to_bitmaps(data["gt_masks"], h, w) if data.get("gt_masks") is not None else None
    return meta.get("filename", ""), img, data.get("gt_bboxes", np.zeros((0, 4))), \
        data.get("gt_labels", np.zeros((0,), np.int64)), masks


def _val_sample(dataset, index: int):
    from detzoo.data.transforms import decode_image

    info = dataset.data_infos[index]
    filename = osp.join(dataset.img_prefix or "", info["filename"])
    img = decode_image(filename)
    ann = dataset.get_ann_info(index)
    masks = None
    if ann.get("masks") is not None and len(ann["masks"]):
        masks = _ann_masks(ann["masks"], img.shape[0], img.shape[1])
    return filename, img, ann["bboxes"], ann["labels"], masks


def _ann_masks(anns, height: int, width: int) -> Optional[np.ndarray]:
    """COCO segmentations (polygons or RLE) -> bool [n, H, W]."""
    from pycocotools import mask as mask_utils

    out = np.zeros((len(anns), height, width), dtype=bool)
    for i, seg in enumerate(anns):
        if isinstance(seg, list):
            rles = mask_utils.frPyObjects(seg, height, width)
            out[i] = mask_utils.decode(mask_utils.merge(rles)).astype(bool)
        elif isinstance(seg, dict):
            rle = mask_utils.frPyObjects(seg, height, width) if isinstance(seg.get("counts"), list) else seg
            out[i] = mask_utils.decode(rle).astype(bool)
    return out


def browse_dataset(cfg, out_dir: str, phase: str = "train", num: Optional[int] = None, seed: int = 0,
                   log: Callable[[str], None] = print) -> List[str]:
    """Draw the first ``num`` images (all when None) of ``data.<phase>`` into ``out_dir``;
    returns the written paths."""
    from detzoo.config import instantiate
    from detzoo.visualization import draw_ground_truth, imwrite_atomic

    if phase not in ("train", "val"):
        raise ConfigError(f"--phase {phase!r} must be train or val")
    data = cfg.get("data") or {}
    split = data.get(phase)
    if not split:
        raise ConfigError(f"the config has no data.{phase}")
    split = dict(split)
    while split.get("type") is not None and "dataset" in split and "ann_file" not in split:
        split = dict(split["dataset"])  # RepeatDataset / ClassBalancedDataset: browse the inner set
    pipeline = split.get("pipeline") or []
    if phase == "val":
        split["test_mode"] = True
    dataset = instantiate(split)
    norm = find_normalization(pipeline, cfg)
    class_names = getattr(dataset, "CLASSES", None) or split.get("classes")
    count = len(dataset) if num is None else min(num, len(dataset))
    os.makedirs(out_dir, exist_ok=True)
    written, used = [], set()
    for index in range(count):
        sample = _train_sample(dataset, index, seed, norm) if phase == "train" else _val_sample(dataset, index)
        if sample is None:
            log(f"image {index}: dropped by the pipeline (no ground truth left), not drawn")
            continue
        filename, img, boxes, labels, masks = sample
        drawn = draw_ground_truth(img, boxes, labels, class_names, masks=masks)
        path = osp.join(out_dir, _out_name(filename, index, used))
        imwrite_atomic(path, drawn)
        written.append(path)
    return written
