"""Pascal VOC detection dataset with MMDetection 2.x ``XMLDataset`` / ``VOCDataset`` semantics.

Layout: ``img_prefix`` is a year folder (``VOCdevkit/VOC2007/``) holding ``Annotations/<id>.xml``
and ``JPEGImages/<id>.jpg``; ``ann_file`` lists the image ids (``ImageSets/Main/trainval.txt``).

Boxes (mmdet/datasets/xml_style.py, ``get_ann_info``): each bndbox value goes through
``int(float(text))`` and then ``- 1``, because VOC numbers pixels from 1; the box
``[xmin-1, ymin-1, xmax-1, ymax-1]`` is pixel-inclusive, so the VOC metric measures it with
"legacy" widths ``x2 - x1 + 1`` (``detzoo.evaluation.voc_metric``). Objects marked ``difficult``,
and in training objects narrower or shorter than ``min_size`` (when set), go to
``bboxes_ignore`` / ``labels_ignore``; objects of a class outside ``classes`` are skipped.
In training, images whose short side is < 32 px, or (``filter_empty_gt``) that have no object
of a kept class, difficult ones included, are dropped (mmdet ``XMLDataset._filter_imgs``).

The XML files are parsed once, when the dataset is built; samples then go through the same
machinery as ``CocoDataset`` (``DetectionDataset.prepare`` and ``__getitem__``): the pipeline gets
``dict(img_info, ann_info, img_prefix, img_id, bbox_fields, mask_fields)`` where img_info is
``dict(id=<VOC id>, filename='JPEGImages/<id>.jpg', width, height)``.
"""
from __future__ import annotations

import os.path as osp
import xml.etree.ElementTree as ET
from collections import Counter, OrderedDict
from typing import Callable, Optional, Sequence

import cv2
import numpy as np

from ..errors import ConfigError, DataError
from .class_names import VOC_CLASSES
from .base_dataset import DetectionDataset
from .transforms.compose import Compose

_MIN_IMG_SIZE = 32  # mmdet 2.x CustomDataset._filter_imgs(min_size=32)
_BOX_TAGS = ("xmin", "ymin", "xmax", "ymax")


def voc_year(img_prefix: str) -> Optional[int]:
    """2007 or 2012 when the folder name says so (mmdet infers it the same way), else None."""
    if "VOC2007" in img_prefix:
        return 2007
    if "VOC2012" in img_prefix:
        return 2012
    return None


def read_image_ids(ann_file: str) -> list[str]:
    """Image ids of an ImageSets file, one per line (blank lines skipped)."""
    if not osp.isfile(ann_file):
        raise DataError(f"image-set file not found: {ann_file}")
    ids = []
    with open(ann_file, "r", encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            fields = line.split()
            if len(fields) > 1:
                raise DataError(f"{ann_file}, line {lineno}: expected one image id, got {line.strip()!r} "
                                "(a per-class list such as aeroplane_trainval.txt is not an image set)")
            if fields:
                ids.append(fields[0])
    repeated = [img_id for img_id, n in Counter(ids).items() if n > 1]
    if repeated:
        raise DataError(f"{ann_file}: image id {repeated[0]!r} is listed more than once")
    return ids


def parse_voc_xml(xml_path: str, classes: Optional[Sequence[str]] = None) -> dict:
    """One annotation file -> dict(width, height (None when <size> is absent), objects=[dict(name,
    difficult, bbox=[xmin, ymin, xmax, ymax] as int(float(text)), 1-based as written)]).

    Objects whose name is not in ``classes`` (when given) are skipped before their box is read,
    as mmdet does; every problem in a kept one is a DataError naming the file and the object.
    """
    if not osp.isfile(xml_path):
        raise DataError(f"annotation file not found: {xml_path}")
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as exc:
        raise DataError(f"{xml_path}: malformed XML ({exc})") from exc
    width = height = None
    size = root.find("size")
    if size is not None:
        width = _int_field(size, "width", xml_path, "<size>")
        height = _int_field(size, "height", xml_path, "<size>")
        if width <= 0 or height <= 0:
            raise DataError(f"{xml_path}: <size> must be positive, got width {width}, height {height}")
    objects = []
    for k, obj in enumerate(root.findall("object")):
        name = obj.findtext("name")
        if name is None or not name.strip():
            raise DataError(f"{xml_path}: object #{k} has no <name>")
        name = name.strip()
        if classes is not None and name not in classes:
            continue
        where = f"object #{k} ({name})"
        difficult = 0 if obj.find("difficult") is None else _int_field(obj, "difficult", xml_path, where)
        box = obj.find("bndbox")
        if box is None:
            raise DataError(f"{xml_path}: {where} has no <bndbox>")
        bbox = [_int_field(box, tag, xml_path, where, allow_float=True) for tag in _BOX_TAGS]
        if bbox[2] < bbox[0] or bbox[3] < bbox[1]:
            raise DataError(f"{xml_path}: {where}: box {bbox} has xmax < xmin or ymax < ymin")
        objects.append(dict(name=name, difficult=bool(difficult), bbox=bbox))
    return dict(width=width, height=height, objects=objects)


def _int_field(node, tag: str, xml_path: str, where: str, allow_float: bool = False) -> int:
    text = node.findtext(tag)
    if text is None:
        raise DataError(f"{xml_path}: {where} has no <{tag}>")
    try:
        return int(float(text)) if allow_float else int(text)
    except ValueError:
        raise DataError(f"{xml_path}: {where}: <{tag}> is not a number: {text.strip()!r}") from None


class VOCDataset(DetectionDataset):
    """Pascal VOC (or any VOC-layout) detection dataset.

    Args:
        ann_file: ImageSets file listing the image ids. img_prefix: the year folder holding
            ``ann_subdir`` (Annotations) and ``img_subdir`` (JPEGImages).
        pipeline: steps (callables or ``dict(type=...)``) applied to each sample's results dict.
        classes: class names in label order (default the 20 VOC classes).
        test_mode: keep every image, never resample. filter_empty_gt: training image filter.
        min_size: training only: objects with width or height (xmax - xmin, ymax - ymin) below
            it are ignored (mmdet ``XMLDataset(min_size=...)``); None keeps all.
        eval_mode: VOC AP flavour of :meth:`evaluate`; None = from the year, as mmdet:
            ``'11points'`` for a VOC2007 folder, ``'area'`` otherwise (mmdet refuses folders
            without a year; here they get VOC2010+'s ``'area'``).

    Attributes: CLASSES, cat2label, img_ids (VOC id strings), data_infos (img_info dicts),
    flag (uint8 aspect-ratio group: 1 when w / h > 1), year, eval_mode, proposals (None).
    """


    def __init__(self, ann_file: str, img_prefix: str = "", pipeline: Sequence[Callable] = (),
                 classes: Optional[Sequence[str]] = VOC_CLASSES, test_mode: bool = False,
                 filter_empty_gt: bool = True, min_size: Optional[float] = None,
                 eval_mode: Optional[str] = None, img_subdir: str = "JPEGImages",
                 ann_subdir: str = "Annotations"):
        self.ann_file = ann_file
        self.img_prefix = img_prefix
        self.test_mode = test_mode
        self.filter_empty_gt = filter_empty_gt
        self.min_size = min_size
        self.img_subdir = img_subdir
        self.ann_subdir = ann_subdir
        self.proposals = None
        self.CLASSES = self._check_classes(VOC_CLASSES if classes is None else classes)
        self.cat2label = {name: label for label, name in enumerate(self.CLASSES)}
        self.year = voc_year(img_prefix)
        if eval_mode is None:
            eval_mode = "11points" if self.year == 2007 else "area"
        if eval_mode not in ("area", "11points"):
            raise ConfigError(f"VOCDataset: eval_mode must be 'area' or '11points', got {eval_mode!r}")
        self.eval_mode = eval_mode

        self.data_infos, self._anns, has_objects = [], [], []
        for img_id in read_image_ids(ann_file):
            info, ann, any_kept_object = self._load_image(img_id)
            self.data_infos.append(info)
            self._anns.append(ann)
            has_objects.append(any_kept_object)
        if not test_mode:
            keep = [i for i, info in enumerate(self.data_infos)
                    if min(info["width"], info["height"]) >= _MIN_IMG_SIZE
                    and (has_objects[i] or not filter_empty_gt)]
            self.data_infos = [self.data_infos[i] for i in keep]
            self._anns = [self._anns[i] for i in keep]
        self.img_ids = [info["id"] for info in self.data_infos]
        self.flag = np.array([1 if info["width"] / info["height"] > 1 else 0
                              for info in self.data_infos], dtype=np.uint8)
        self.pipeline = Compose(pipeline)

    def _check_classes(self, classes) -> tuple:
        if isinstance(classes, str):
            raise DataError(f"{self.ann_file}: classes must be a sequence of names, "
                            f"got the string {classes!r}")
        classes = tuple(classes)
        dup = sorted({c for c in classes if classes.count(c) > 1})
        if dup:
            raise DataError(f"{self.ann_file}: class names {dup} occur more than once in classes")
        return classes

    def _load_image(self, img_id: str):
        xml_path = osp.join(self.img_prefix, self.ann_subdir, f"{img_id}.xml")
        filename = osp.join(self.img_subdir, f"{img_id}.jpg")
        parsed = parse_voc_xml(xml_path, self.CLASSES)
        width, height = parsed["width"], parsed["height"]
        if width is None:  # no <size>: read it from the image, as mmdet
            img = cv2.imread(osp.join(self.img_prefix, filename), cv2.IMREAD_UNCHANGED)
            if img is None:
                raise DataError(f"{xml_path} has no <size> and its image "
                                f"{osp.join(self.img_prefix, filename)} cannot be read")
            height, width = img.shape[:2]
        info = dict(id=img_id, filename=filename, width=width, height=height)
        return info, self._make_ann(parsed["objects"]), bool(parsed["objects"])

    def _make_ann(self, objects: list) -> dict:
        boxes = np.array([o["bbox"] for o in objects], dtype=np.float32).reshape(-1, 4) - 1
        labels = np.array([self.cat2label[o["name"]] for o in objects], dtype=np.int64)
        ignore = np.array([o["difficult"] for o in objects], dtype=bool)
        if self.min_size is not None and not self.test_mode:
            width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
            ignore |= (width < self.min_size) | (height < self.min_size)
        return dict(bboxes=boxes[~ignore], labels=labels[~ignore],
                    bboxes_ignore=boxes[ignore], labels_ignore=labels[ignore])

    def __len__(self) -> int:
        return len(self.data_infos)

    def get_ann_info(self, idx: int) -> dict:
        """Annotations of image ``idx``: bboxes float32 [n, 4] (0-based, pixel-inclusive xyxy),
        labels int64 [n], bboxes_ignore float32 [k, 4], labels_ignore int64 [k] (difficult)."""
        return {key: value.copy() for key, value in self._anns[idx].items()}

    def evaluate(self, results: Sequence, metric="mAP", iou_thr=0.5, logger=None,
                 print_fn: Optional[Callable[[str], None]] = print) -> "OrderedDict[str, float]":
        """VOC mAP of ``results`` (one ``DetResult`` or mmdet per-class list per image, in
        dataset order), as mmdet 2.x ``VOCDataset.evaluate``.

        Returns ``mAP`` (mean over ``iou_thr``, unrounded) then ``AP50`` (``AP<100*thr>`` for each
        threshold, rounded to 3 decimals); a per-class table per threshold goes to
        ``logger.info`` or ``print_fn``.
        """
        from detzoo.evaluation.voc_metric import as_mmdet_lists, eval_map

        metrics = [metric] if isinstance(metric, str) else list(metric)
        wrong = [m for m in metrics if m != "mAP"]
        if wrong or not metrics:
            raise ConfigError(f"a VOC dataset is evaluated with metric 'mAP', not {wrong or metrics}")
        if len(results) != len(self):
            raise DataError(f"{len(results)} results for the {len(self)} images of {self.ann_file}")
        det_results = [as_mmdet_lists(r, len(self.CLASSES)) for r in results]
        annotations = [self._anns[i] for i in range(len(self))]
        thresholds = [iou_thr] if isinstance(iou_thr, (int, float)) else list(iou_thr)
        out, mean_aps = OrderedDict(), []
        for thr in thresholds:
            mean_ap, _ = eval_map(det_results, annotations, iou_thr=thr, eval_mode=self.eval_mode,
                                  use_legacy_coordinate=True, class_names=self.CLASSES,
                                  logger=logger, print_fn=print_fn)
            mean_aps.append(mean_ap)
            out[f"AP{int(thr * 100):02d}"] = round(mean_ap, 3)
        out["mAP"] = sum(mean_aps) / len(mean_aps)
        out.move_to_end("mAP", last=False)
        return out

    def __repr__(self) -> str:
        return (f"VOCDataset(ann_file={self.ann_file!r}, images={len(self)}, "
                f"classes={len(self.CLASSES)}, test_mode={self.test_mode}, eval_mode={self.eval_mode!r})")
