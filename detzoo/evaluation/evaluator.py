"""Accumulates a test loop's results and evaluates them with COCO metrics.

Results are converted to COCO JSON entries (masks RLE-encoded) as they arrive, so memory stays
small and the state is a plain picklable ``{img_id: [entries]}`` dict: in distributed testing each
rank calls ``state()``, the states are gathered (``torch.distributed.all_gather_object``) and
``merge``d on rank 0. Images seen twice (samplers pad the last batch) are counted once.
"""
from __future__ import annotations

from typing import Callable, Iterable, Optional, Sequence, Union

from detzoo.errors import DataError
from detzoo.evaluation.coco_metric import evaluate_coco
from detzoo.evaluation.results_io import (label_to_cat_ids, load_coco_gt, result_to_coco_json,
                                          save_results_json)
from detzoo.structures import DetResult


class CocoEvaluator:
    """COCO metrics over a test run.

    coco_gt: pycocotools ``COCO`` (or annotation path) of the test set.
    cat_ids: COCO category id of each 0-based label (``dataset.cat_ids``); default: the
        annotation file's categories in their file order.
    img_ids: images the metrics cover (``dataset.img_ids``); default: all of the annotation file.
        Images never processed count as having no detections, as in MMDetection.
    class_names: the model's class names (``model.class_names``). None, or the names of
        ``cat_ids``: label ``l`` is category ``cat_ids[l]``; other names (torchvision's 91-entry
        COCO list) map by name (:func:`detzoo.evaluation.results_io.label_to_cat_ids`).
    """

    def __init__(self, coco_gt, cat_ids: Optional[Sequence[int]] = None,
                 img_ids: Optional[Sequence[int]] = None,
                 proposal_nums: Sequence[int] = (100, 300, 1000),
                 iou_thrs: Optional[Sequence[float]] = None, classwise: bool = False,
                 print_fn: Optional[Callable[[str], None]] = print, logger=None,
                 class_names: Optional[Sequence[str]] = None):
        self.coco_gt = load_coco_gt(coco_gt)
        self.cat_ids = list(cat_ids) if cat_ids is not None else \
            [c["id"] for c in self.coco_gt.dataset.get("categories", [])]
        self.class_names = tuple(class_names) if class_names else None  # () (an RPN's): no names
        if self.class_names is not None:
            cats = self.coco_gt.cats
            missing = [c for c in self.cat_ids if c not in cats]
            if missing:
                raise DataError(f"category ids {missing[:5]} are not in the annotation file")
            self.label_cat_ids = label_to_cat_ids(self.class_names, [cats[c]["name"] for c in self.cat_ids],
                                                  self.cat_ids)
        else:
            self.label_cat_ids = list(self.cat_ids)
        self.img_ids = list(img_ids) if img_ids is not None else None
        self.proposal_nums = tuple(proposal_nums)
        self.iou_thrs = iou_thrs
        self.classwise = classwise
        self.print_fn = print_fn
        self.logger = logger
        self._dets: dict[int, list[dict]] = {}

    @classmethod
    def from_dataset(cls, dataset, **kwargs) -> "CocoEvaluator":
        """Use ``dataset.coco``, ``dataset.cat_ids`` and (if present) ``dataset.img_ids``."""
        return cls(dataset.coco, cat_ids=dataset.cat_ids,
                   img_ids=getattr(dataset, "img_ids", None), **kwargs)

    def reset(self) -> None:
        self._dets = {}

    def process(self, img_metas: Sequence[dict], results: Sequence[DetResult]) -> None:
        """Add one batch: ``img_metas[i]['img_id']`` is the COCO id of ``results[i]``."""
        if len(img_metas) != len(results):
            raise DataError(f"{len(img_metas)} img_metas but {len(results)} results in a batch")
        for meta, result in zip(img_metas, results):
            if "img_id" not in meta:
                raise DataError(f"img_meta of {meta.get('filename', '?')} has no 'img_id'")
            img_id = int(meta["img_id"])
            self._dets[img_id] = result_to_coco_json(result, img_id, self.label_cat_ids,
                                                     class_names=self.class_names)

    def state(self) -> dict[int, list[dict]]:
        """Picklable accumulated detections, for gathering across ranks."""
        return self._dets

    def merge(self, states: Iterable[dict[int, list[dict]]]) -> None:
        """Fold in other ranks' ``state()``s; an image already present keeps its detections."""
        for state in states:
            for img_id, entries in state.items():
                self._dets.setdefault(int(img_id), entries)

    @property
    def num_images(self) -> int:
        return len(self._dets)

    def detections(self) -> list[dict]:
        """All accumulated COCO result entries, image by image in id order."""
        return [entry for img_id in sorted(self._dets) for entry in self._dets[img_id]]

    def save(self, path: str) -> None:
        """Write the accumulated detections as a COCO results JSON (atomic)."""
        save_results_json(path, self.detections())

    def evaluate(self, metric: Union[str, Sequence[str]] = "bbox",
                 classwise: Optional[bool] = None) -> dict:
        """Metrics dict of :func:`detzoo.evaluation.evaluate_coco`."""
        return evaluate_coco(self.coco_gt, self.detections(), metric=metric,
                             classwise=self.classwise if classwise is None else classwise,
                             proposal_nums=self.proposal_nums, iou_thrs=self.iou_thrs,
                             img_ids=self.img_ids, cat_ids=self.cat_ids,
                             logger=self.logger, print_fn=self.print_fn)
