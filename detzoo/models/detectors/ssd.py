"""SSD: a single-stage detector whose input size is fixed by its anchors (300 or 512 square).

MMDetection runs SSD with ``pad_size_divisor=1`` (shared/checkpoint-layouts/mmdet/
ssd300_coco.json, data_preprocessor), so a 300x300 image reaches the network as 300x300 and the
maps are 38, 19, 10, 5, 3, 1. Our loaders pad batches to a multiple of 32 (320x320), which would
give 40x40 maps and anchors that no longer match the trained ones. The batch padding added
beyond every image's own ``pad_shape`` carries no information, so :class:`SSD` crops it off
before the backbone; images still padded by a ``Pad`` step of the pipeline keep that padding.
"""
from __future__ import annotations

from typing import Dict, List

import torch

from detzoo.structures import DetResult
from .single_stage import SingleStageDetector

__all__ = ["SSD", "crop_batch_padding"]


def crop_batch_padding(img: torch.Tensor, img_metas: List[dict]) -> torch.Tensor:
    """img [B, C, H, W] -> img[..., :h, :w] with (h, w) the largest ``pad_shape`` (else
    ``img_shape``) of the batch: the padding that only collation added."""
    shapes = [meta.get("pad_shape") or meta.get("img_shape") for meta in img_metas]
    if any(s is None for s in shapes):
        return img
    h, w = max(int(s[0]) for s in shapes), max(int(s[1]) for s in shapes)
    if h >= img.shape[-2] and w >= img.shape[-1]:
        return img
    return img[..., :h, :w]


class SSD(SingleStageDetector):
    """Backbone (SSDVGG / MobileNetV1) -> neck (SSDNeck or None) -> SSDHead; see
    :class:`SingleStageDetector` for the arguments and the batch contract."""

    def loss(self, batch: dict) -> Dict[str, torch.Tensor]:
        batch = dict(batch, img=crop_batch_padding(batch["img"], batch["img_metas"]))
        return super().loss(batch)

    def predict(self, img: torch.Tensor, img_metas: List[dict], rescale: bool = True) -> List[DetResult]:
        return super().predict(crop_batch_padding(img, img_metas), img_metas, rescale)
