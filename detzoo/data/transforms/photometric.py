"""Pixel-value pipeline steps."""
from __future__ import annotations

import cv2
import numpy as np

from ...errors import ConfigError
from .compose import sample_rng


class Normalize:
    """``img = ((img[..., ::-1] if to_rgb else img) - mean) / std`` as float32.

    The arithmetic is float32 subtract then float32 divide, which is what MMDetection 3.x's
    DetDataPreprocessor does in torch (the reference of our golden outputs); mmcv 2.x's
    ``imnormalize`` multiplies by 1/std instead, which differs by at most one float32 ulp.
    Records ``results['img_norm_cfg']`` (mean, std as float32 arrays, to_rgb).
    """

    def __init__(self, mean, std, to_rgb: bool = True):
        self.mean = np.asarray(mean, dtype=np.float32).reshape(-1)
        self.std = np.asarray(std, dtype=np.float32).reshape(-1)
        if self.mean.shape != self.std.shape or not np.all(self.std != 0):
            raise ConfigError(f"Normalize: mean {mean} and std {std} must have the same length "
                              "and std no zeros")
        self.to_rgb = bool(to_rgb)
        self._given = ([float(v) for v in np.ravel(mean)], [float(v) for v in np.ravel(std)])

    def __call__(self, results: dict) -> dict:
        for key in results.get("img_fields", ["img"]):
            img = results[key]
            if self.to_rgb:
                img = img[..., ::-1]
            results[key] = (img.astype(np.float32) - self.mean) / self.std
        results["img_norm_cfg"] = dict(mean=self.mean.copy(), std=self.std.copy(),
                                       to_rgb=self.to_rgb)
        return results

    def __repr__(self) -> str:
        return f"Normalize(mean={self._given[0]}, std={self._given[1]}, to_rgb={self.to_rgb})"


class PhotoMetricDistortion:
    """Random brightness, contrast, saturation, hue and channel order (MMDetection 2.x / SSD).

    Every operation happens with probability 1/2, in mmdet's order
    (mmdet/datasets/pipelines/transforms.py ``PhotoMetricDistortion``):

    1. brightness: ``img += delta``, delta ~ U(-brightness_delta, brightness_delta)
    2. contrast, when a coin says "first": ``img *= alpha``, alpha ~ U(*contrast_range)
    3. BGR -> HSV (cv2 float convention: H in degrees [0, 360), S in [0, 1], V = max(B, G, R))
    4. saturation: ``S *= U(*saturation_range)``
    5. hue: ``H += U(-hue_delta, hue_delta)`` wrapped back into [0, 360]
    6. HSV -> BGR
    7. contrast, when the coin said "last"
    8. channel shuffle: a random permutation of the 3 channels

    The image becomes float32 (values are not clipped, as in mmdet); boxes and masks are
    untouched. All draws come from ``sample_rng(results)``, in this order: brightness coin
    [and delta], contrast-position coin, [first contrast coin [and alpha]], saturation coin
    [and factor], hue coin [and delta], [last contrast coin [and alpha]], shuffle coin
    [and permutation].
    """

    def __init__(self, brightness_delta: float = 32, contrast_range=(0.5, 1.5),
                 saturation_range=(0.5, 1.5), hue_delta: float = 18):
        for name, (low, high) in (("contrast_range", contrast_range),
                                  ("saturation_range", saturation_range)):
            if not 0 <= low <= high:
                raise ConfigError(f"PhotoMetricDistortion: {name} must be (low, high) with "
                                  f"0 <= low <= high, got {(low, high)}")
        if brightness_delta < 0 or hue_delta < 0:
            raise ConfigError(f"PhotoMetricDistortion: brightness_delta ({brightness_delta}) and "
                              f"hue_delta ({hue_delta}) must be >= 0")
        self.brightness_delta = brightness_delta
        self.contrast_range = (float(contrast_range[0]), float(contrast_range[1]))
        self.saturation_range = (float(saturation_range[0]), float(saturation_range[1]))
        self.hue_delta = hue_delta

    def _contrast(self, img: np.ndarray, rng) -> np.ndarray:
        if rng.integers(2):
            img *= np.float32(rng.uniform(*self.contrast_range))
        return img

    def __call__(self, results: dict) -> dict:
        if results.get("img_fields", ["img"]) != ["img"]:
            raise ConfigError("PhotoMetricDistortion: only results['img'] can be distorted, got "
                              f"img_fields={results['img_fields']}")
        rng = sample_rng(results)
        img = results["img"].astype(np.float32)  # always a copy
        if rng.integers(2):
            img += np.float32(rng.uniform(-self.brightness_delta, self.brightness_delta))
        contrast_last = bool(rng.integers(2))
        if not contrast_last:
            img = self._contrast(img, rng)
        img = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
        if rng.integers(2):
            img[..., 1] *= np.float32(rng.uniform(*self.saturation_range))
        if rng.integers(2):
            hue = img[..., 0]
            hue += np.float32(rng.uniform(-self.hue_delta, self.hue_delta))
            hue[hue > 360] -= 360
            hue[hue < 0] += 360
        img = cv2.cvtColor(img, cv2.COLOR_HSV2BGR)
        if contrast_last:
            img = self._contrast(img, rng)
        if rng.integers(2):
            img = np.ascontiguousarray(img[..., rng.permutation(3)])
        results["img"] = img
        return results

    def __repr__(self) -> str:
        return (f"PhotoMetricDistortion(brightness_delta={self.brightness_delta}, "
                f"contrast_range={self.contrast_range}, "
                f"saturation_range={self.saturation_range}, hue_delta={self.hue_delta})")
