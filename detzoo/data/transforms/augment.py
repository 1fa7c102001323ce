"""Training augmentations of the SSD / YOLOv3 recipes: Expand, MinIoURandomCrop, MixUp,
RandomInterpResize, and the MultiImageMixDataset wrapper that feeds MixUp its second image.

Semantics follow MMDetection 2.x (mmdet/datasets/pipelines/transforms.py) and, for MixUp and
random interpolation, PaddleDetection (ppdet/data/transform/operators.py ``MixupImage``,
``BatchRandomResize(random_interp=True)``). Every random draw comes from
``sample_rng(results)``, so a sample's augmentation depends on the loader seed only.

Masks are uint8 bitmaps [n, H, W] or, per instance, lists of float32 polygon arrays
(x0, y0, x1, y1, ...), as LoadAnnotations makes them (docs/architecture.md).
"""
from __future__ import annotations

import copy

import numpy as np
from torch.utils.data import Dataset

from ...errors import ConfigError, DataError
from ...ops.boxes import bbox_overlaps_np
from .compose import Compose, sample_rng
from .geometric import _CV2_INTERP, Resize

# per-box keys that must follow a box key when boxes are dropped (mmdet's bbox2label /
# bbox2mask of MinIoURandomCrop, plus MixUp's gt_score)
_PAIRED_KEYS = {
    "gt_bboxes": ("gt_labels", "gt_score", "gt_masks"),
    "gt_bboxes_ignore": ("gt_labels_ignore", "gt_masks_ignore"),
}


def _single_image(results: dict, step: str) -> np.ndarray:
    if results.get("img_fields", ["img"]) != ["img"]:
        raise ConfigError(f"{step}: only results['img'] is supported, got "
                          f"img_fields={results['img_fields']}")
    return results["img"]


def _shift_polygons(polygons, dx: float, dy: float):
    """Per instance lists of [x0, y0, x1, y1, ...] arrays moved by (dx, dy)."""
    offset = np.array([dx, dy], dtype=np.float32)
    return [[(p.reshape(-1, 2) + offset).reshape(-1).astype(np.float32) for p in polys]
            for polys in polygons]


def _place_bitmaps(masks: np.ndarray, height: int, width: int, top: int, left: int):
    """Bitmaps [n, h, w] pasted at (top, left) of zero canvases [n, height, width]."""
    canvas = np.zeros((len(masks), height, width), dtype=masks.dtype)
    canvas[:, top:top + masks.shape[1], left:left + masks.shape[2]] = masks
    return canvas


class Expand:
    """Place the image at a random position of a canvas ``ratio`` times larger, filled with
    ``mean`` (SSD's "zoom out"), with probability ``prob``.

    mean: the dataset mean in the order of the normalisation config; to_rgb=True means it is
    RGB while the image is still BGR, so it is reversed (mmdet ``Expand``). ratio ~
    U(ratio_range); canvas = (int(h * ratio), int(w * ratio)); left = int(U(0, w * ratio - w)),
    top likewise. Boxes (all ``bbox_fields``) move by (left, top); bitmap masks are pasted
    into zero canvases, polygons move by (left, top). Sets img_shape and pad_shape (mmdet 2.x
    leaves them stale; a later step would then read the old size). The canvas keeps the image
    dtype (a uint8 image rounds the mean down, as mmdet).
    """

    def __init__(self, mean=(0, 0, 0), to_rgb: bool = True, ratio_range=(1, 4),
                 prob: float = 0.5):
        low, high = ratio_range
        if not 1 <= low <= high:
            raise ConfigError(f"Expand: ratio_range must be (low, high) with 1 <= low <= high, "
                              f"got {tuple(ratio_range)}")
        if not 0 <= prob <= 1:
            raise ConfigError(f"Expand: prob must be in [0, 1], got {prob}")
        self.mean = [float(v) for v in mean]
        self.to_rgb = to_rgb
        self.ratio_range = (float(low), float(high))
        self.prob = prob
        self._fill = np.asarray(self.mean[::-1] if to_rgb else self.mean, dtype=np.float64)

    def __call__(self, results: dict) -> dict:
        img = _single_image(results, "Expand")
        rng = sample_rng(results)
        if rng.random() > self.prob:
            return results
        h, w, c = img.shape
        if len(self._fill) not in (1, c):
            raise ConfigError(f"Expand: mean has {len(self._fill)} values but the image has "
                              f"{c} channels")
        ratio = rng.uniform(*self.ratio_range)
        canvas_h, canvas_w = int(h * ratio), int(w * ratio)
        left = int(rng.uniform(0, w * ratio - w))
        top = int(rng.uniform(0, h * ratio - h))
        canvas = np.empty((canvas_h, canvas_w, c), dtype=img.dtype)
        canvas[...] = self._fill.astype(img.dtype)
        canvas[top:top + h, left:left + w] = img
        results["img"] = canvas
        results["img_shape"] = canvas.shape
        results["pad_shape"] = canvas.shape
        shift = np.array([left, top, left, top], dtype=np.float32)
        for key in results.get("bbox_fields", []):
            results[key] = (results[key] + shift).astype(np.float32)
        for key in results.get("mask_fields", []):
            masks = results[key]
            results[key] = (_place_bitmaps(masks, canvas_h, canvas_w, top, left)
                            if isinstance(masks, np.ndarray) else
                            _shift_polygons(masks, left, top))
        return results

    def __repr__(self) -> str:
        return (f"Expand(mean={self.mean}, to_rgb={self.to_rgb}, ratio_range={self.ratio_range}, "
                f"prob={self.prob})")


def _centres_inside(boxes: np.ndarray, patch: np.ndarray) -> np.ndarray:
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    return ((centre[:, 0] > patch[0]) & (centre[:, 1] > patch[1])
            & (centre[:, 0] < patch[2]) & (centre[:, 1] < patch[3]))


class MinIoURandomCrop:
    """SSD's random crop whose IoU with every box is at least a randomly chosen threshold.

    mmdet 2.x loop: draw a mode from (1, *min_ious, 0); mode 1 returns the sample unchanged;
    otherwise up to 50 trials of a crop of w' ~ U(min_crop_size * w, w), h' ~ U(min_crop_size
    * h, h) with 0.5 <= h'/w' <= 2, at left = (w - w') + (1 - (w - w')) * U(0, 1), i.e. between
    1 and w - w' (mmdet calls numpy's ``uniform(w - new_w)``, whose one argument is ``low``
    with high = 1; we keep that), top likewise,
    patch = int(left), int(top), int(left + w'), int(top + h'). A trial is accepted when the
    patch's IoU with every box of every bbox_field is >= the mode and at least one box centre
    lies strictly inside; after 50 failures a new mode is drawn.

    Kept boxes (centre strictly inside the patch) are clipped to it when bbox_clip_border and
    shifted to its origin; labels, gt_score and masks paired with a box key (gt_bboxes ->
    gt_labels, gt_score, gt_masks; gt_bboxes_ignore -> gt_labels_ignore, gt_masks_ignore) are
    filtered alike. Bitmaps are cropped; polygons are only shifted (as mmdet: rasterising
    clips them). Sets img_shape and pad_shape.
    """

    def __init__(self, min_ious=(0.1, 0.3, 0.5, 0.7, 0.9), min_crop_size: float = 0.3,
                 bbox_clip_border: bool = True):
        if not 0 < min_crop_size <= 1:
            raise ConfigError(f"MinIoURandomCrop: min_crop_size must be in (0, 1], got "
                              f"{min_crop_size}")
        self.min_ious = tuple(float(v) for v in min_ious)
        self.sample_mode = (1.0, *self.min_ious, 0.0)
        self.min_crop_size = min_crop_size
        self.bbox_clip_border = bbox_clip_border

    def _sample_patch(self, rng, h: int, w: int, boxes: np.ndarray):
        """The accepted patch (int xyxy array), or None for "no crop" (mode 1)."""
        while True:
            min_iou = self.sample_mode[int(rng.integers(len(self.sample_mode)))]
            if min_iou == 1:
                return None
            for _ in range(50):
                new_w = rng.uniform(self.min_crop_size * w, w)
                new_h = rng.uniform(self.min_crop_size * h, h)
                if not 0.5 <= new_h / new_w <= 2:
                    continue
                # numpy's legacy uniform(low, high=1) is low + (high - low) * U even when
                # low > high; Generator.uniform refuses that, so spell it out
                left = (w - new_w) + (1.0 - (w - new_w)) * rng.random()
                top = (h - new_h) + (1.0 - (h - new_h)) * rng.random()
                patch = np.array([int(left), int(top), int(left + new_w), int(top + new_h)])
                if patch[2] == patch[0] or patch[3] == patch[1]:
                    continue
                if len(boxes):
                    if bbox_overlaps_np(patch[None], boxes).min() < min_iou:
                        continue
                    if not _centres_inside(boxes, patch).any():
                        continue
                return patch

    def __call__(self, results: dict) -> dict:
        img = _single_image(results, "MinIoURandomCrop")
        keys = results.get("bbox_fields", [])
        boxes = np.concatenate([results[k] for k in keys] or [np.zeros((0, 4), np.float32)])
        h, w = img.shape[:2]
        patch = self._sample_patch(sample_rng(results), h, w, boxes.reshape(-1, 4))
        if patch is None:
            return results
        x1, y1, x2, y2 = (int(v) for v in patch)
        for key in keys:
            keep = _centres_inside(results[key], patch)
            kept = results[key][keep].copy()
            if self.bbox_clip_border:
                kept[:, 2:] = kept[:, 2:].clip(max=patch[2:])
                kept[:, :2] = kept[:, :2].clip(min=patch[:2])
            results[key] = (kept - np.array([x1, y1, x1, y1], np.float32)).astype(np.float32)
            for paired in _PAIRED_KEYS.get(key, ()):
                if paired not in results:
                    continue
                value = results[paired]
                if isinstance(value, np.ndarray) and value.ndim == 3:  # bitmaps
                    results[paired] = np.ascontiguousarray(value[keep][:, y1:y2, x1:x2])
                elif isinstance(value, np.ndarray):
                    results[paired] = value[keep]
                else:  # polygons
                    results[paired] = _shift_polygons(
                        [value[i] for i in np.flatnonzero(keep)], -x1, -y1)
        results["img"] = img[y1:y2, x1:x2]
        results["img_shape"] = results["img"].shape
        results["pad_shape"] = results["img"].shape
        return results

    def __repr__(self) -> str:
        return (f"MinIoURandomCrop(min_ious={self.min_ious}, min_crop_size={self.min_crop_size}, "
                f"bbox_clip_border={self.bbox_clip_border})")


def _scores(results: dict) -> np.ndarray:
    n = len(results.get("gt_bboxes", ()))
    score = results.get("gt_score")
    return np.ones(n, np.float32) if score is None else np.asarray(score, np.float32)


class MixUp:
    """Blend the sample with a second one (PaddleDetection YOLOv3 ``MixupImage``).

    The second sample comes from ``results['mix_results'][0]``, which
    :class:`MultiImageMixDataset` loads (the wrapped dataset's pipeline: typically
    LoadImageFromFile + LoadAnnotations) for an index drawn from the sample's generator by
    :meth:`get_indexes`. lam ~ Beta(alpha, beta) clipped to [0, 1]; lam = 1 keeps the sample,
    lam = 0 returns the second one. Otherwise, on a zero canvas of (max h, max w), both images
    anchored top-left: ``img = lam * a + (1 - lam) * b`` (float32; Paddle truncates to uint8,
    we keep the exact values), so where only one image lies it is scaled by its weight.
    Boxes of every bbox_field and gt_labels are concatenated (sample first), masks too (bitmaps
    padded to the canvas), and ``gt_score`` (float32 [n], default 1 per box) becomes
    ``concat(score_a * lam, score_b * (1 - lam))``. Sets img_shape and pad_shape.
    Put it into Collect's keys as 'gt_score' for a head that weights its losses by it.
    """

    def __init__(self, alpha: float = 1.5, beta: float = 1.5):
        if alpha <= 0 or beta <= 0:
            raise ConfigError(f"MixUp: alpha and beta must be positive, got {alpha}, {beta}")
        self.alpha = alpha
        self.beta = beta

    def get_indexes(self, dataset, rng: np.random.Generator) -> list[int]:
        """The index of the second sample (any image of ``dataset``, uniformly)."""
        return [int(rng.integers(len(dataset)))]

    def __call__(self, results: dict) -> dict:
        img_a = _single_image(results, "MixUp")
        mix = results.pop("mix_results", None)
        if not mix:
            raise DataError("MixUp: results has no 'mix_results' (the second image); wrap the "
                            "dataset in MultiImageMixDataset (see docs/augmentations.md)")
        other = mix[0]
        lam = float(np.clip(sample_rng(results).beta(self.alpha, self.beta), 0.0, 1.0))
        results["gt_score"] = _scores(results)
        if lam >= 1.0:
            return results
        if lam <= 0.0:
            other = dict(other, rng=results["rng"])
            other["gt_score"] = _scores(other)
            return other
        img_b = other["img"]
        height = max(img_a.shape[0], img_b.shape[0])
        width = max(img_a.shape[1], img_b.shape[1])
        canvas = np.zeros((height, width, img_a.shape[2]), dtype=np.float32)
        canvas[:img_a.shape[0], :img_a.shape[1]] = img_a.astype(np.float32) * np.float32(lam)
        canvas[:img_b.shape[0], :img_b.shape[1]] += img_b.astype(np.float32) * np.float32(1 - lam)
        for key in results.get("bbox_fields", []):
            theirs = other.get(key, np.zeros((0, 4), np.float32))
            results[key] = np.concatenate([results[key], theirs]).astype(np.float32)
        if "gt_labels" in results:
            results["gt_labels"] = np.concatenate(
                [results["gt_labels"], other.get("gt_labels", np.zeros(0, np.int64))])
        results["gt_score"] = np.concatenate(
            [results["gt_score"] * np.float32(lam), _scores(other) * np.float32(1 - lam)])
        for key in results.get("mask_fields", []):
            ours, theirs = results[key], other.get(key)
            if theirs is None:
                raise DataError(f"MixUp: the second sample has no {key!r}")
            if isinstance(ours, np.ndarray) != isinstance(theirs, np.ndarray):
                raise DataError(f"MixUp: {key} are bitmaps in one sample and polygons in the other")
            results[key] = (np.concatenate([_place_bitmaps(ours, height, width, 0, 0),
                                            _place_bitmaps(theirs, height, width, 0, 0)])
                            if isinstance(ours, np.ndarray) else list(ours) + list(theirs))
        results["img"] = canvas
        results["img_shape"] = canvas.shape
        results["pad_shape"] = canvas.shape
        return results

    def __repr__(self) -> str:
        return f"MixUp(alpha={self.alpha}, beta={self.beta})"


class MultiImageMixDataset(Dataset):
    """Runs ``pipeline`` on samples of ``dataset``, handing multi-image steps their extra images
    (mmdet 2.x ``MultiImageMixDataset``).

    ``dataset`` (e.g. a CocoDataset whose pipeline only loads: LoadImageFromFile,
    LoadAnnotations) gives the raw samples; ``pipeline`` holds MixUp and everything after it.
    Before a step with ``get_indexes(dataset, rng)`` runs, the samples of those indexes are
    loaded into ``results['mix_results']`` (removed again after the step).

    Reproducible like CocoDataset: ``dataset[(i, seed)]`` seeds one generator from ``seed``;
    it draws the seeds of the wrapped samples and the mix indexes, and is the ``results['rng']``
    of ``pipeline``. Exposes CLASSES and flag of ``dataset``. A sample the pipeline drops
    (a step returned None) is replaced by a random one, at most ``max_refetch`` times.
    """

    accepts_sample_seed = True

    def __init__(self, dataset, pipeline, max_refetch: int = 15):
        if max_refetch < 1:
            raise ConfigError(f"MultiImageMixDataset: max_refetch must be >= 1, got {max_refetch}")
        self.dataset = dataset
        self.pipeline = Compose(pipeline)
        self.max_refetch = max_refetch
        self.CLASSES = getattr(dataset, "CLASSES", None)
        if hasattr(dataset, "flag"):
            self.flag = dataset.flag

    def __len__(self) -> int:
        return len(self.dataset)

    def _load(self, idx: int, rng: np.random.Generator) -> dict:
        if getattr(self.dataset, "accepts_sample_seed", False):
            results = self.dataset[(idx, int(rng.integers(2**63 - 1)))]
        else:
            results = self.dataset[idx]
        if results is None:
            raise DataError(f"MultiImageMixDataset: the wrapped dataset gave no sample for "
                            f"index {idx}")
        return results

    def __getitem__(self, index):
        idx, seed = index if isinstance(index, tuple) else (index, None)
        rng = np.random.default_rng(np.random.randint(0, 2**31 - 1) if seed is None else seed)
        for _ in range(self.max_refetch):
            results = self._load(idx, rng)
            results["rng"] = rng
            for step in self.pipeline.transforms:
                if hasattr(step, "get_indexes"):
                    results["mix_results"] = [self._load(i, rng)
                                              for i in step.get_indexes(self.dataset, rng)]
                results = step(results)
                if results is None:
                    break
                results.pop("mix_results", None)
            if results is not None:
                return results
            idx = int(rng.integers(len(self.dataset)))
        raise DataError(f"MultiImageMixDataset: the pipeline dropped {self.max_refetch} samples "
                        "in a row")

    def __repr__(self) -> str:
        return f"MultiImageMixDataset(dataset={self.dataset!r}, pipeline={self.pipeline!r})"


# PaddleDetection's random_interp choices (BatchRandomResize / RandomInterpImage)
_PADDLE_INTERPS = ("nearest", "bilinear", "area", "bicubic", "lanczos")


class RandomInterpResize(Resize):
    """``Resize`` whose cv2 interpolation is drawn per sample among ``interpolations``
    (PaddleDetection ``random_interp``: nearest, bilinear, area, bicubic, lanczos).

    The method is drawn first, then Resize runs as usual (its scale draw follows); the choice
    is recorded in ``results['interpolation']``. Other arguments: see :class:`Resize`.
    """

    def __init__(self, img_scale=None, multiscale_mode: str = "range", ratio_range=None,
                 keep_ratio: bool = True, interpolations=_PADDLE_INTERPS,
                 bbox_clip_border: bool = True, scale=None):
        interpolations = tuple(interpolations)
        unknown = [m for m in interpolations if m not in _CV2_INTERP]
        if not interpolations or unknown:
            raise ConfigError(f"RandomInterpResize: interpolations must be a non-empty list of "
                              f"{', '.join(_CV2_INTERP)}; got {list(interpolations)}")
        super().__init__(img_scale=img_scale, multiscale_mode=multiscale_mode,
                         ratio_range=ratio_range, keep_ratio=keep_ratio,
                         interpolation=interpolations[0], bbox_clip_border=bbox_clip_border,
                         scale=scale)
        self.interpolations = interpolations

    def __call__(self, results: dict) -> dict:
        method = self.interpolations[int(sample_rng(results).integers(len(self.interpolations)))]
        resize = copy.copy(self)  # the step object is shared by samples: leave it unchanged
        resize.interpolation = method
        results["interpolation"] = method
        return Resize.__call__(resize, results)

    def __repr__(self) -> str:
        return (f"RandomInterpResize(img_scale={self.img_scale}, "
                f"multiscale_mode={self.multiscale_mode!r}, ratio_range={self.ratio_range}, "
                f"keep_ratio={self.keep_ratio}, interpolations={list(self.interpolations)}, "
                f"bbox_clip_border={self.bbox_clip_border})")
