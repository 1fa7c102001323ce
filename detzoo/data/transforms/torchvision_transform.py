"""torchvision's ``GeneralizedRCNNTransform`` preprocessing as a pipeline step.

torchvision (``models/detection/transform.py``) takes an RGB float image in [0, 1], normalises
it with ImageNet mean/std *before* resizing, then resizes it with
``F.interpolate(scale_factor=s, mode="bilinear", recompute_scale_factor=True,
align_corners=False)`` where ``s = min(min_size / short_side, max_size / long_side)`` is computed
in float32; batching pads bottom/right with 0 to a multiple of 32 (``Pad(size_divisor=32)`` and
``collate`` do that here). Replaces ``Resize`` + ``Normalize`` in a test pipeline.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from detzoo.errors import DataError


class TorchvisionResizeNormalize:
    """``results["img"]`` HxWx3 uint8 BGR (as loaded) -> HxWx3 float32, RGB, normalised, resized.

    Sets img_shape, scale_factor (new / old per axis, float32 [4]), keep_ratio and img_norm_cfg.
    Boxes in ``bbox_fields`` are scaled by the same per-axis ratios (new / old).
    """

    def __init__(self, min_size: int = 800, max_size: int = 1333,
                 mean: Sequence[float] = (0.485, 0.456, 0.406), std: Sequence[float] = (0.229, 0.224, 0.225),
                 to_rgb: bool = True):
        self.min_size = int(min_size)
        self.max_size = int(max_size)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.to_rgb = to_rgb

    def __call__(self, results: dict) -> dict:
        img = results["img"]
        if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3:
            raise DataError(f"TorchvisionResizeNormalize: {results.get('filename', 'image')}: expected an "
                            f"HxWx3 image, got {getattr(img, 'shape', type(img))}")
        if self.to_rgb:
            img = img[..., ::-1]
        # torchvision's to_tensor / convert_image_dtype: uint8 -> float32, then divide by 255
        x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).to(torch.float32)
        if img.dtype == np.uint8:
            x = x.div(255)
        mean = torch.as_tensor(self.mean, dtype=torch.float32)
        std = torch.as_tensor(self.std, dtype=torch.float32)
        x = (x - mean[:, None, None]) / std[:, None, None]
        h, w = x.shape[-2:]
        im_shape = torch.tensor([h, w])
        short = torch.min(im_shape).to(dtype=torch.float32)
        long = torch.max(im_shape).to(dtype=torch.float32)
        scale = torch.min(self.min_size / short, self.max_size / long).item()
        x = F.interpolate(x[None], scale_factor=scale, mode="bilinear", recompute_scale_factor=True,
                          align_corners=False)[0]
        new_h, new_w = x.shape[-2:]
        results["img"] = x.permute(1, 2, 0).numpy()
        results["img_shape"] = (new_h, new_w, 3)
        w_scale, h_scale = new_w / w, new_h / h
        results["scale_factor"] = np.array([w_scale, h_scale, w_scale, h_scale], dtype=np.float32)
        results["keep_ratio"] = True
        results["img_norm_cfg"] = dict(mean=np.array(self.mean, dtype=np.float32) * 255,
                                       std=np.array(self.std, dtype=np.float32) * 255, to_rgb=self.to_rgb)
        for key in results.get("bbox_fields", []):
            results[key] = (results[key] * results["scale_factor"]).astype(np.float32)
        return results

    def __repr__(self) -> str:
        return (f"TorchvisionResizeNormalize(min_size={self.min_size}, max_size={self.max_size}, "
                f"mean={self.mean}, std={self.std})")
