"""Pipeline steps that read images and annotations (MMDetection 2.x ``loading.py`` semantics)."""
from __future__ import annotations

import os.path as osp

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from ...errors import DataError, UnreadableImageError

# cv2 flags of mmcv.imfrombytes. Plain IMREAD_COLOR applies the EXIF orientation tag
# (mmcv/image/io.py; fidelity.md B.1); 'color_ignore_orientation' keeps the stored pixel order.
_IMREAD_FLAGS = {
    "color": cv2.IMREAD_COLOR,
    "grayscale": cv2.IMREAD_GRAYSCALE,
    "unchanged": cv2.IMREAD_UNCHANGED,
    "color_ignore_orientation": cv2.IMREAD_IGNORE_ORIENTATION | cv2.IMREAD_COLOR,
    "grayscale_ignore_orientation": cv2.IMREAD_IGNORE_ORIENTATION | cv2.IMREAD_GRAYSCALE,
}


def decode_image(path: str, color_type: str = "color") -> np.ndarray:
    """Decode an image file like mmcv ``imread(path, flag=color_type)`` (BGR uint8 for 'color')."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise UnreadableImageError(f"cannot read image {path}: {exc.strerror or exc}", path) from exc
    if not data.size:
        raise UnreadableImageError(f"cannot decode image {path}: the file is empty", path)
    img = cv2.imdecode(data, _IMREAD_FLAGS[color_type])
    if img is None:
        raise UnreadableImageError(f"cannot decode image {path}: not a readable image file "
                                   f"({data.size} bytes, truncated or not an image)", path)
    return img


def _set_image(results: dict, img: np.ndarray) -> dict:
    results["img"] = img
    results["img_shape"] = img.shape
    results["ori_shape"] = img.shape
    results["pad_shape"] = img.shape  # until a Pad step says otherwise
    results["img_fields"] = ["img"]
    results.setdefault("img_id", results.get("img_info", {}).get("id", -1))
    return results


class LoadImageFromFile:
    """Reads ``results['img_info']['filename']`` (joined to ``results['img_prefix']``) or
    ``results['filename']``.

    Sets filename (full path), ori_filename, img (HxWx3 BGR uint8, float32 when to_float32),
    img_shape, ori_shape, pad_shape, img_fields, and img_id (-1 when there is no img_info).
    """

    def __init__(self, to_float32: bool = False, color_type: str = "color"):
        if color_type not in _IMREAD_FLAGS:
            raise DataError(f"LoadImageFromFile: unknown color_type {color_type!r}; "
                            f"known: {', '.join(_IMREAD_FLAGS)}")
        self.to_float32 = to_float32
        self.color_type = color_type

    def __call__(self, results: dict) -> dict:
        if "img_info" in results:
            ori_filename = results["img_info"]["filename"]
            prefix = results.get("img_prefix")
            filename = osp.join(prefix, ori_filename) if prefix else ori_filename
        elif "filename" in results:
            filename = ori_filename = results["filename"]
        else:
            raise DataError("LoadImageFromFile: results has neither 'img_info' nor 'filename'")
        img = decode_image(filename, self.color_type)
        if self.to_float32:
            img = img.astype(np.float32)
        results["filename"] = filename
        results["ori_filename"] = ori_filename
        return _set_image(results, img)

    def __repr__(self) -> str:
        return f"LoadImageFromFile(to_float32={self.to_float32}, color_type={self.color_type!r})"


class LoadImageFromNDArray:
    """Takes an already decoded BGR image from ``results['img']`` (inference on arrays/webcams)."""

    def __init__(self, to_float32: bool = False):
        self.to_float32 = to_float32

    def __call__(self, results: dict) -> dict:
        img = results.get("img")
        if not isinstance(img, np.ndarray) or img.ndim not in (2, 3):
            raise DataError("LoadImageFromNDArray: results['img'] must be an HxW or HxWxC array")
        if self.to_float32:
            img = img.astype(np.float32)
        results.setdefault("filename", None)
        results.setdefault("ori_filename", None)
        return _set_image(results, img)

    def __repr__(self) -> str:
        return f"LoadImageFromNDArray(to_float32={self.to_float32})"


def polygons_to_bitmap(segmentation, height: int, width: int) -> np.ndarray:
    """One COCO segmentation (polygon list, RLE or uncompressed RLE) -> uint8 HxW mask."""
    if isinstance(segmentation, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation.get("counts"), list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        rle = segmentation
    return mask_utils.decode(rle)


class LoadAnnotations:
    """Copies boxes, labels and masks of ``results['ann_info']`` (from ``CocoDataset``).

    gt_bboxes / gt_bboxes_ignore: float32 [n, 4] xyxy; gt_labels: int64 [n].
    gt_masks (with_mask): uint8 [n, H, W] bitmaps when poly2mask, else per instance a list of
    float32 polygon arrays [2k] (x0, y0, x1, y1, ...; RLE masks need poly2mask=True).
    """

    def __init__(self, with_bbox: bool = True, with_label: bool = True, with_mask: bool = False,
                 poly2mask: bool = True):
        self.with_bbox = with_bbox
        self.with_label = with_label
        self.with_mask = with_mask
        self.poly2mask = poly2mask

    def __call__(self, results: dict) -> dict:
        if "ann_info" not in results:
            raise DataError("LoadAnnotations: results has no 'ann_info' (is the dataset in "
                            "test mode without annotations?)")
        ann = results["ann_info"]
        results.setdefault("bbox_fields", [])
        results.setdefault("mask_fields", [])
        if self.with_bbox:
            results["gt_bboxes"] = np.asarray(ann["bboxes"], dtype=np.float32).reshape(-1, 4).copy()
            results["bbox_fields"].append("gt_bboxes")
            if ann.get("bboxes_ignore") is not None:
                results["gt_bboxes_ignore"] = np.asarray(
                    ann["bboxes_ignore"], dtype=np.float32).reshape(-1, 4).copy()
                results["bbox_fields"].append("gt_bboxes_ignore")
        if self.with_label:
            results["gt_labels"] = np.asarray(ann["labels"], dtype=np.int64).copy()
        if self.with_mask:
            results["gt_masks"] = self._load_masks(results, ann.get("masks", []))
            results["mask_fields"].append("gt_masks")
        return results

    def _load_masks(self, results: dict, segmentations: list):
        img_info = results.get("img_info", {})
        height = img_info.get("height", results["ori_shape"][0] if "ori_shape" in results else None)
        width = img_info.get("width", results["ori_shape"][1] if "ori_shape" in results else None)
        where = img_info.get("filename", results.get("filename"))
        for k, seg in enumerate(segmentations):
            if not seg:
                raise DataError(f"image {where}: instance #{k} has no 'segmentation' "
                                "but the pipeline loads masks (with_mask=True)")
        if self.poly2mask:
            if not segmentations:
                return np.zeros((0, height, width), dtype=np.uint8)
            return np.stack([polygons_to_bitmap(s, height, width) for s in segmentations])
        polygons = []
        for k, seg in enumerate(segmentations):
            if not isinstance(seg, list):
                raise DataError(f"image {where}: instance #{k} is an RLE mask; "
                                "use LoadAnnotations(poly2mask=True)")
            polygons.append([np.asarray(p, dtype=np.float32) for p in seg if len(p) >= 6])
        return polygons

    def __repr__(self) -> str:
        return (f"LoadAnnotations(with_bbox={self.with_bbox}, with_label={self.with_label}, "
                f"with_mask={self.with_mask}, poly2mask={self.poly2mask})")


class LoadProposals:
    """Takes this image's precomputed proposals (``results['proposals']``, set by a dataset with a
    ``proposal_file``) into the pipeline, as MMDetection 2.x ``LoadProposals``.

    Keeps the first ``num_max_proposals`` rows (None: all; files are sorted by score), drops the
    score column (-> float32 [N, 4]) and adds 'proposals' to bbox_fields so Resize/RandomFlip
    transform them like gt_bboxes. An image without proposals gets one all-zero box, as mmdet.
    """

    def __init__(self, num_max_proposals: int | None = None):
        if num_max_proposals is not None and num_max_proposals < 1:
            raise DataError(f"LoadProposals: num_max_proposals must be >= 1 or None, got "
                            f"{num_max_proposals}")
        self.num_max_proposals = num_max_proposals

    def __call__(self, results: dict) -> dict:
        where = results.get("img_info", {}).get("filename", results.get("filename", "<image>"))
        if "proposals" not in results:
            raise DataError(f"LoadProposals: no proposals for {where}: give the dataset a "
                            "proposal_file")
        proposals = np.asarray(results["proposals"])
        if proposals.ndim != 2 or proposals.shape[1] not in (4, 5):
            raise DataError(f"LoadProposals: proposals of {where} must be [N, 4] or [N, 5], got "
                            f"shape {proposals.shape}")
        proposals = proposals[: self.num_max_proposals, :4].astype(np.float32)  # a copy
        if len(proposals) == 0:
            proposals = np.zeros((1, 4), dtype=np.float32)
        results["proposals"] = proposals
        results.setdefault("bbox_fields", []).append("proposals")
        return results

    def __repr__(self) -> str:
        return f"LoadProposals(num_max_proposals={self.num_max_proposals})"
