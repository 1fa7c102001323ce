"""Batch-level augmentation: steps applied to a whole collated batch on the training device.

A batch step is a callable ``step(batch, *, seed: int, iteration: int) -> batch`` taking the
``collate`` output (docs/architecture.md) already moved to the device. The trainer applies the
steps listed in the config key ``data.batch_augments`` after moving each training batch:

    data = dict(..., batch_augments=[
        dict(type=BatchRandomResize, sizes=[320, 352, 384, 416, 448, 480, 512, 544, 576, 608])])

``seed`` is the training seed and ``iteration`` the 0-based global iteration, so a step's
random choices depend on (seed, iteration) only: the same on every rank (no broadcast needed),
for any number of loader workers, and again after resuming.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError
from .transforms.compose import build_step

_BOX_KEYS = ("gt_bboxes", "gt_bboxes_ignore", "proposals")
# torch modes for PaddleDetection's random_interp choices (cv2 nearest, linear, area, cubic,
# lanczos); torch has no lanczos, so 'random' draws among these four
_TORCH_MODES = ("nearest", "bilinear", "area", "bicubic")


def _interpolate(img: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """[N, C, h, w] -> [N, C, *size]; bilinear/bicubic use half-pixel centres like cv2.resize."""
    if mode in ("bilinear", "bicubic"):
        return F.interpolate(img, size=size, mode=mode, align_corners=False)
    return F.interpolate(img, size=size, mode=mode)


def _nearest_index(old: int, new: int, device) -> torch.Tensor:
    """Source rows/columns of cv2 INTER_NEAREST: min(floor(i * old / new), old - 1), computed in
    float64 as cv2 does (torch's float32 'nearest' picks a different row now and then)."""
    index = np.minimum(np.floor(np.arange(new) * (1.0 / (new / old))), old - 1)
    return torch.as_tensor(index.astype(np.int64), device=device)


class BatchRandomResize:
    """Resize every image of a batch to one size drawn per batch (YOLOv3 multi-scale training,
    PaddleDetection ``BatchRandomResize``).

    sizes: square sizes (ints) or (h, w) pairs; one is drawn uniformly every ``interval``
        iterations from a generator seeded with (seed, iteration // interval).
    keep_ratio: False (PaddleDetection's YOLOv3 setting) stretches each image's valid region
        (its img_shape) to exactly (h, w); True scales it by min(h / h_i, w / w_i) and pads
        bottom/right with ``pad_value`` to (h, w).
    interpolation: a torch mode (nearest, bilinear, area, bicubic) or 'random' (drawn per batch
        among those four, PaddleDetection's ``random_interp``).

    Only the valid region of each image is resampled, so collate's padding never bleeds in.
    Updates per image: img_shape (resized region), pad_shape = (h, w, C), scale_factor
    multiplied by (sx, sy, sx, sy) with sx = new_w / old_w, sy = new_h / old_h; gt_bboxes,
    gt_bboxes_ignore and proposals multiplied by the same factors; bitmap gt_masks resized
    (nearest) and padded to (h, w); polygon gt_masks scaled.
    """

    def __init__(self, sizes, interval: int = 1, keep_ratio: bool = False,
                 interpolation: str = "bilinear", pad_value: float = 0.0):
        if not sizes:
            raise ConfigError("BatchRandomResize: sizes must be a non-empty list")
        parsed = []
        for size in sizes:
            pair = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
            if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and v > 0 for v in pair):
                raise ConfigError(f"BatchRandomResize: each size must be a positive int or an "
                                  f"(h, w) pair of them, got {size!r}")
            parsed.append((int(pair[0]), int(pair[1])))
        if interval < 1:
            raise ConfigError(f"BatchRandomResize: interval must be >= 1, got {interval}")
        if interpolation not in _TORCH_MODES + ("random",):
            raise ConfigError(f"BatchRandomResize: interpolation must be one of "
                              f"{', '.join(_TORCH_MODES)} or 'random', got {interpolation!r}")
        self.sizes = parsed
        self.interval = interval
        self.keep_ratio = keep_ratio
        self.interpolation = interpolation
        self.pad_value = pad_value

    def choose(self, seed: int, iteration: int) -> tuple[tuple[int, int], str]:
        """The ((h, w), interpolation mode) of the batch of ``iteration``."""
        rng = np.random.default_rng((int(seed), int(iteration) // self.interval))
        size = self.sizes[int(rng.integers(len(self.sizes)))]
        mode = (_TORCH_MODES[int(rng.integers(len(_TORCH_MODES)))]
                if self.interpolation == "random" else self.interpolation)
        return size, mode

    def __call__(self, batch: dict, *, seed: int, iteration: int) -> dict:
        (target_h, target_w), mode = self.choose(seed, iteration)
        imgs = batch["img"]
        out = imgs.new_full((imgs.shape[0], imgs.shape[1], target_h, target_w), self.pad_value)
        metas, factors = [], []
        for i, meta in enumerate(batch["img_metas"]):
            h, w = int(meta["img_shape"][0]), int(meta["img_shape"][1])
            if self.keep_ratio:
                scale = min(target_h / h, target_w / w)
                new_h, new_w = int(h * scale + 0.5), int(w * scale + 0.5)
            else:
                new_h, new_w = target_h, target_w
            out[i, :, :new_h, :new_w] = _interpolate(imgs[i:i + 1, :, :h, :w], (new_h, new_w),
                                                     mode)[0]
            sx, sy = new_w / w, new_h / h
            factor = np.array([sx, sy, sx, sy], dtype=np.float32)
            channels = tuple(meta["img_shape"][2:])
            old_factor = np.asarray(meta.get("scale_factor", np.ones(4, np.float32)), np.float32)
            metas.append(dict(meta, img_shape=(new_h, new_w) + channels,
                              pad_shape=(target_h, target_w) + channels,
                              scale_factor=(old_factor * factor).astype(np.float32)))
            factors.append((factor, (h, w), (new_h, new_w)))
        batch = dict(batch, img=out, img_metas=metas)
        for key in _BOX_KEYS:
            if key in batch:
                batch[key] = [boxes * boxes.new_tensor(f) for boxes, (f, _, _) in
                              zip(batch[key], factors)]
        if "gt_masks" in batch:
            batch["gt_masks"] = [self._resize_masks(m, *f, (target_h, target_w))
                                 for m, f in zip(batch["gt_masks"], factors)]
        return batch

    @staticmethod
    def _resize_masks(masks, factor, old_hw, new_hw, target_hw):
        if isinstance(masks, torch.Tensor):  # bitmaps [n, H_pad, W_pad]
            out = masks.new_zeros((masks.shape[0],) + tuple(target_hw))
            rows = _nearest_index(old_hw[0], new_hw[0], masks.device)
            cols = _nearest_index(old_hw[1], new_hw[1], masks.device)
            out[:, :new_hw[0], :new_hw[1]] = masks[:, rows][:, :, cols]
            return out
        xy = factor[:2]
        return [[(np.asarray(p, np.float32).reshape(-1, 2) * xy).reshape(-1) for p in polys]
                for polys in masks]

    def __repr__(self) -> str:
        return (f"BatchRandomResize(sizes={self.sizes}, interval={self.interval}, "
                f"keep_ratio={self.keep_ratio}, interpolation={self.interpolation!r}, "
                f"pad_value={self.pad_value})")


BATCH_AUGMENTS = {"BatchRandomResize": BatchRandomResize}


class BatchAugments:
    """Applies batch steps in order: ``BatchAugments(steps)(batch, seed=, iteration=)``."""

    def __init__(self, steps):
        self.steps = [build_batch_step(step) for step in steps]

    def __call__(self, batch: dict, *, seed: int, iteration: int) -> dict:
        for step in self.steps:
            batch = step(batch, seed=seed, iteration=iteration)
        return batch

    def __repr__(self) -> str:
        return f"BatchAugments({self.steps!r})"


def build_batch_step(step):
    """A batch step from a callable, a class or ``dict(type=class or registered name, **kwargs)``."""
    return build_step(step, BATCH_AUGMENTS, "data.batch_augments entry")


def build_batch_augments(cfg) -> BatchAugments | None:
    """``data.batch_augments`` (a list of steps, or None/empty) -> BatchAugments or None."""
    if not cfg:
        return None
    if isinstance(cfg, dict) or callable(cfg):
        cfg = [cfg]
    return BatchAugments(list(cfg))

