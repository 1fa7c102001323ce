"""COCO-format detection dataset with MMDetection 2.x ``CocoDataset`` semantics.

Labels are 0-based and follow the order of ``classes`` (or of the json's ``categories``);
boxes are converted from COCO xywh to xyxy with x2 = x + w (no +1). Annotations with
``iscrowd=1`` become ``bboxes_ignore``; ``ignore=1``, empty, w<1, h<1 or area<=0 boxes are
skipped (mmdet ``_parse_ann_info``). In training, images without an annotation of a kept class
(``filter_empty_gt``) or smaller than ``min_size`` are dropped (mmdet ``_filter_imgs``).
With a ``proposal_file`` (Fast R-CNN) its per-image arrays are aligned with the annotation file's
images and filtered together with them (mmdet 2.x ``CustomDataset``).
"""
from __future__ import annotations

import contextlib
import io
import math
import os.path as osp
import warnings
from numbers import Real
from typing import Callable, Optional, Sequence

import numpy as np
from pycocotools.coco import COCO

from ..errors import DataError
from ..utils.fileio import read_json
from .base_dataset import DetectionDataset
from .transforms.compose import Compose

_IMAGE_KEYS = ("id", "file_name", "width", "height")
_ANN_KEYS = ("id", "image_id", "category_id", "bbox", "area")
_CAT_KEYS = ("id", "name")


def read_coco_json(ann_file: str) -> dict:
    """Load and validate a COCO annotation file; every problem is a DataError naming the entry."""
    if not osp.isfile(ann_file):
        raise DataError(f"annotation file not found: {ann_file}")
    data = read_json(ann_file)
    if not isinstance(data, dict):
        raise DataError(f"{ann_file}: top level must be a JSON object with 'images', "
                        f"'annotations' and 'categories', got {type(data).__name__}")
    for section in ("images", "categories"):
        if not isinstance(data.get(section), list):
            raise DataError(f"{ann_file}: missing or non-list '{section}' section")
    data.setdefault("annotations", [])
    if not isinstance(data["annotations"], list):
        raise DataError(f"{ann_file}: 'annotations' must be a list")
    _check_entries(ann_file, data["images"], "images", _IMAGE_KEYS)
    _check_entries(ann_file, data["categories"], "categories", _CAT_KEYS)
    _check_entries(ann_file, data["annotations"], "annotations", _ANN_KEYS)
    for i, img in enumerate(data["images"]):
        for key in ("width", "height"):
            if not _is_number(img[key]) or img[key] <= 0:
                raise DataError(f"{ann_file}: images[{i}] (id {img['id']}): {key} must be a "
                                f"positive number, got {img[key]!r}")
    image_ids = {img["id"] for img in data["images"]}
    for i, ann in enumerate(data["annotations"]):
        where = f"{ann_file}: annotation id {ann['id']} (annotations[{i}])"
        bbox = ann["bbox"]
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
            raise DataError(f"{where}: bbox must be 4 numbers [x, y, w, h], got {bbox!r}")
        if ann["image_id"] not in image_ids:
            raise DataError(f"{where}: image_id {ann['image_id']!r} is not in 'images'")
        if not _is_number(ann["area"]):
            raise DataError(f"{where}: area must be a number, got {ann['area']!r}")
    return data


def _is_number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def _check_entries(ann_file, entries, section, required):
    seen = set()
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise DataError(f"{ann_file}: {section}[{i}] must be an object, got {entry!r}")
        for key in required:
            if key not in entry:
                ident = f" (id {entry['id']})" if "id" in entry else ""
                raise DataError(f"{ann_file}: {section}[{i}]{ident}: missing key '{key}'")
        if entry["id"] in seen:
            raise DataError(f"{ann_file}: {section}[{i}]: duplicate id {entry['id']!r}")
        seen.add(entry["id"])


class CocoDataset(DetectionDataset):
    """COCO detection dataset.

    Args:
        ann_file: COCO json. img_prefix: folder the images' ``file_name`` are relative to.
        pipeline: steps (callables or ``dict(type=...)``) applied to each sample's results dict.
        classes: class names to keep, in label order (looked up by name); None = all
            categories in json order.
        test_mode: keep every image and never resample. filter_empty_gt / min_size: training
            image filter (see module doc).
        proposal_file: precomputed proposals (.pkl or .json, see
            ``detzoo.evaluation.proposals_io``): one [N, 4|5] array per image of ``ann_file``,
            in its ``images`` order; image ``i`` gets ``results['proposals']`` (read by
            ``LoadProposals``).

    Attributes: CLASSES, cat_ids, cat2label, img_ids, data_infos (image dicts plus
    ``filename``), coco (pycocotools COCO built from the validated json), flag (uint8
    aspect-ratio group per image: 1 when w / h > 1), proposals (list aligned with data_infos,
    or None).

    ``dataset[i]`` runs the pipeline on ``dict(img_info, ann_info, img_prefix, img_id,
    bbox_fields, mask_fields)``; ``dataset[(i, seed)]`` also passes a generator seeded with
    ``seed`` as ``results['rng']`` (the data loader does that, see ``loader.py``).
    """


    def __init__(self, ann_file: str, img_prefix: str = "", pipeline: Sequence[Callable] = (),
                 classes: Optional[Sequence[str]] = None, test_mode: bool = False,
                 filter_empty_gt: bool = True, min_size: int = 32,
                 proposal_file: Optional[str] = None):
        self.ann_file = ann_file
        self.proposal_file = proposal_file
        self.img_prefix = img_prefix
        self.test_mode = test_mode
        self.filter_empty_gt = filter_empty_gt
        self.min_size = min_size
        data = read_coco_json(ann_file)
        self.coco = COCO()
        self.coco.dataset = data
        with contextlib.redirect_stdout(io.StringIO()):
            self.coco.createIndex()
        self.CLASSES, self.cat_ids = self._select_classes(data["categories"], classes)
        self.cat2label = {cat_id: label for label, cat_id in enumerate(self.cat_ids)}
        self._warn_unknown_categories(data)
        self.img_ids = [img["id"] for img in data["images"]]
        self.data_infos = [dict(img, filename=img["file_name"]) for img in data["images"]]
        self.proposals = self._load_proposals() if proposal_file is not None else None
        if not test_mode:
            self._filter_images(data)
        self.flag = np.array([1 if info["width"] / info["height"] > 1 else 0
                              for info in self.data_infos], dtype=np.uint8)
        self.pipeline = Compose(pipeline)

    def _load_proposals(self) -> list:
        from ..evaluation.proposals_io import load_proposals

        proposals = load_proposals(self.proposal_file)
        if len(proposals) != len(self.data_infos):
            raise DataError(f"{self.proposal_file}: holds proposals for {len(proposals)} images but "
                            f"{self.ann_file} has {len(self.data_infos)} images (a proposal file "
                            "lists every image of its annotation file, in the same order)")
        return proposals

    def _select_classes(self, categories, classes):
        if classes is None:
            return tuple(c["name"] for c in categories), [c["id"] for c in categories]
        if isinstance(classes, str):
            raise DataError(f"{self.ann_file}: classes must be a sequence of names, got the "
                            f"string {classes!r}")
        name_to_ids = {}
        for cat in categories:
            name_to_ids.setdefault(cat["name"], []).append(cat["id"])
        missing = [name for name in classes if name not in name_to_ids]
        if missing:
            raise DataError(f"{self.ann_file}: classes {missing} are not among its categories "
                            f"{sorted(name_to_ids)}")
        ambiguous = [name for name in classes if len(name_to_ids[name]) > 1]
        if ambiguous:
            raise DataError(f"{self.ann_file}: category names {ambiguous} occur more than once")
        return tuple(classes), [name_to_ids[name][0] for name in classes]

    def _warn_unknown_categories(self, data):
        # MMDetection silently skips such annotations (its own tests/data/coco_sample.json has
        # one); we skip them too, but say so.
        known = {c["id"] for c in data["categories"]}
        unknown = [a["id"] for a in data["annotations"] if a["category_id"] not in known]
        if unknown:
            warnings.warn(f"{self.ann_file}: {len(unknown)} annotation(s) refer to a category id "
                          f"not in 'categories' and are ignored (annotation ids "
                          f"{unknown[:10]}{' ...' if len(unknown) > 10 else ''})", stacklevel=3)

    def _filter_images(self, data):
        ids_with_ann = {ann["image_id"] for ann in data["annotations"]}
        ids_in_cat = set()
        for cat_id in self.cat_ids:
            ids_in_cat |= set(self.coco.catToImgs[cat_id])
        ids_in_cat &= ids_with_ann
        keep = [i for i, info in enumerate(self.data_infos)
                if (not self.filter_empty_gt or info["id"] in ids_in_cat)
                and min(info["width"], info["height"]) >= self.min_size]
        self.data_infos = [self.data_infos[i] for i in keep]
        self.img_ids = [self.img_ids[i] for i in keep]
        if self.proposals is not None:
            self.proposals = [self.proposals[i] for i in keep]

    def __len__(self) -> int:
        return len(self.data_infos)

    def get_ann_info(self, idx: int) -> dict:
        """Annotations of image ``idx``: bboxes float32 [n, 4] xyxy, labels int64 [n],
        bboxes_ignore float32 [k, 4] (crowd), masks (the n COCO segmentations, None where
        absent), seg_map (semantic map file name, mmdet convention)."""
        info = self.data_infos[idx]
        bboxes, labels, ignore, masks = [], [], [], []
        for ann in self.coco.imgToAnns.get(info["id"], []):
            if ann.get("ignore", False):
                continue
            x1, y1, w, h = ann["bbox"]
            inter_w = max(0, min(x1 + w, info["width"]) - max(x1, 0))
            inter_h = max(0, min(y1 + h, info["height"]) - max(y1, 0))
            if inter_w * inter_h == 0 or ann["area"] <= 0 or w < 1 or h < 1:
                continue
            if ann["category_id"] not in self.cat2label:
                continue
            box = [x1, y1, x1 + w, y1 + h]
            if ann.get("iscrowd", False):
                ignore.append(box)
            else:
                bboxes.append(box)
                labels.append(self.cat2label[ann["category_id"]])
                masks.append(ann.get("segmentation"))
        return dict(
            bboxes=np.array(bboxes, dtype=np.float32).reshape(-1, 4),
            labels=np.array(labels, dtype=np.int64),
            bboxes_ignore=np.array(ignore, dtype=np.float32).reshape(-1, 4),
            masks=masks,
            seg_map=info["filename"].rsplit(".", 1)[0] + ".png",
        )

    def __repr__(self) -> str:
        return (f"CocoDataset(ann_file={self.ann_file!r}, images={len(self)}, "
                f"classes={len(self.CLASSES)}, test_mode={self.test_mode})")
