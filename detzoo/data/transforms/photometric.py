"""Pixel-value pipeline steps."""
from __future__ import annotations

import numpy as np

from ...errors import ConfigError


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
