"""Pascal VOC detection mAP with MMDetection 2.x ``eval_map`` semantics
(mmdet/core/evaluation/mean_ap.py: ``tpfp_default``, ``average_precision``, ``eval_map``).

Per class, over the whole test set:

* In each image a detection is matched to the gt box of its class it overlaps most, difficult
  (ignored) gts included, covered or not. IoU >= ``iou_thr`` makes it a candidate; a candidate
  whose gt is difficult is neither TP nor FP; among the candidates of one gt, the first in the
  image's score order (``np.argsort(-score)``, as mmdet) is TP and the others FP; a detection
  below ``iou_thr`` is FP. This is the VOC devkit's rule, except ``>=`` (mmdet) for the devkit's ``>``.
* The detections of all images are sorted by score (``np.argsort(-score)`` over the images'
  detections in image order, as mmdet); recall = cumTP / #non-difficult gts, precision =
  cumTP / (cumTP + cumFP).
* AP: ``'area'`` (VOC2010+): area under the precision envelope at every change of recall;
  ``'11points'`` (VOC2007): mean over t in ``np.arange(0, 1 + 1e-3, 0.1)`` of the best precision
  at recall >= t (those exact float thresholds, as mmdet and the devkit's ``voc_eval.py``).
* mAP: mean AP of the classes with at least one non-difficult gt.

IoU: boxes are cast to float32 as mmdet's ``bbox_overlaps`` does; with
``use_legacy_coordinate=True`` (what ``VOCDataset`` uses) widths are ``x2 - x1 + 1``: together with
the ``- 1`` applied to the XML coordinates when loading, this is the devkit's pixel-inclusive
convention. AP values are computed in float64 and agree with mmdet's float32 ones to ~1e-6.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np

from detzoo.errors import ConfigError, DataError
from detzoo.ops.boxes import bbox_overlaps_np
from detzoo.evaluation.coco_metric import _format_table

EVAL_MODES = ("area", "11points")


def average_precision(recalls: np.ndarray, precisions: np.ndarray, mode: str = "area") -> float:
    """AP of one precision/recall curve (1-D arrays in score order); see the module doc."""
    if mode not in EVAL_MODES:
        raise ConfigError(f"unknown VOC AP mode {mode!r}: use 'area' (VOC2010+) or '11points' (VOC2007)")
    recalls = np.asarray(recalls, dtype=np.float64)
    precisions = np.asarray(precisions, dtype=np.float64)
    if mode == "11points":
        thresholds = np.arange(0, 1 + 1e-3, 0.1)
        reached = recalls[None, :] >= thresholds[:, None]
        best = np.where(reached, precisions[None, :], 0.0).max(axis=1, initial=0.0)
        return float(best.sum() / 11)
    mrec = np.concatenate(([0.0], recalls, [1.0]))
    mpre = np.concatenate(([0.0], precisions, [0.0]))
    envelope = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * envelope[steps + 1]))


def _image_tpfp(dets_per_class: Sequence[np.ndarray], ann: dict, iou_thr: float,
                use_legacy_coordinate: bool, where: str):
    """TP/FP flags of one image's detections, all classes at once.

    Returns (labels int64 [N], scores float32 [N], tp bool [N], fp bool [N]) in the order of
    ``concatenate(dets_per_class)``.
    """
    arrays = []
    for c, d in enumerate(dets_per_class):
        d = np.asarray(d, dtype=np.float32)
        if d.size and (d.ndim != 2 or d.shape[1] != 5):
            raise DataError(f"{where}, class {c}: detections must be an [n, 5] array "
                            f"(x1, y1, x2, y2, score), got shape {d.shape}")
        arrays.append(d.reshape(-1, 5))
    counts = np.array([len(a) for a in arrays], dtype=np.int64)
    dets = np.concatenate(arrays) if arrays else np.zeros((0, 5), np.float32)
    labels = np.repeat(np.arange(len(arrays)), counts)
    tp = np.zeros(len(dets), dtype=bool)
    fp = np.zeros(len(dets), dtype=bool)
    if len(dets) == 0:
        return labels, dets[:, 4], tp, fp

    gt_boxes, gt_labels, gt_ignored = _image_gts(ann, where)
    if len(gt_boxes) == 0:
        fp[:] = True
        return labels, dets[:, 4], tp, fp
    ious = bbox_overlaps_np(dets[:, :4], gt_boxes, use_legacy_coordinate)
    ious = np.where(labels[:, None] == gt_labels[None, :], ious, np.float32(-1))  # own class only
    best_gt = ious.argmax(axis=1)
    hit = ious[np.arange(len(dets)), best_gt] >= iou_thr
    fp[~hit] = True
    candidate = hit & ~gt_ignored[best_gt]

    # mmdet visits an image's detections of one class in np.argsort(-score) order
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    order = np.concatenate([start + np.argsort(-dets[start:start + n, 4])
                            for start, n in zip(starts, counts) if n])
    visited = order[candidate[order]]
    first = np.zeros(len(visited), dtype=bool)
    first[np.unique(best_gt[visited], return_index=True)[1]] = True  # a gt's first candidate
    tp[visited[first]] = True
    fp[visited[~first]] = True
    return labels, dets[:, 4], tp, fp


def _image_gts(ann: dict, where: str):
    """(boxes float32 [n+k, 4], labels int64 [n+k], ignored bool [n+k]): the kept gts, then the
    ignored (difficult) ones, as mmdet stacks them."""
    try:
        boxes = np.asarray(ann["bboxes"], dtype=np.float32).reshape(-1, 4)
        labels = np.asarray(ann["labels"], dtype=np.int64).reshape(-1)
    except (KeyError, ValueError, TypeError) as exc:
        raise DataError(f"{where}: annotation needs 'bboxes' [n, 4] and 'labels' [n] ({exc})") from exc
    if ann.get("labels_ignore") is not None:
        ign_boxes = np.asarray(ann["bboxes_ignore"], dtype=np.float32).reshape(-1, 4)
        ign_labels = np.asarray(ann["labels_ignore"], dtype=np.int64).reshape(-1)
    else:  # mmdet: without labels_ignore no gt is ignored
        ign_boxes, ign_labels = np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
    if len(boxes) != len(labels) or len(ign_boxes) != len(ign_labels):
        raise DataError(f"{where}: {len(boxes)} bboxes but {len(labels)} labels, or "
                        f"{len(ign_boxes)} bboxes_ignore but {len(ign_labels)} labels_ignore")
    ignored = np.concatenate([np.zeros(len(boxes), bool), np.ones(len(ign_boxes), bool)])
    return np.concatenate([boxes, ign_boxes]), np.concatenate([labels, ign_labels]), ignored


def eval_map(det_results: Sequence[Sequence[np.ndarray]], annotations: Sequence[dict],
             iou_thr: float = 0.5, eval_mode: str = "area", use_legacy_coordinate: bool = False,
             class_names: Optional[Sequence[str]] = None, logger=None,
             print_fn: Optional[Callable[[str], None]] = print):
    """VOC mAP of a test set (see the module doc).

    det_results: per image, per class a float [n, 5] array (x1, y1, x2, y2, score): MMDetection
        2.x's test output (``detzoo.evaluation.result_to_mmdet_lists``).
    annotations: per image a dict with ``bboxes`` float [n, 4], ``labels`` int [n] (0-based) and
        optionally ``bboxes_ignore`` [k, 4] / ``labels_ignore`` [k] (difficult objects).
    eval_mode: ``'area'`` or ``'11points'``. class_names: row names of the printed table.
    The per-class table goes to ``logger.info`` or ``print_fn`` (None: silent).

    Returns (mAP, per class dict(num_gts, num_dets, recall float [num_dets], precision
    float [num_dets], ap)).
    """
    if eval_mode not in EVAL_MODES:
        raise ConfigError(f"unknown VOC eval_mode {eval_mode!r}: use 'area' or '11points'")
    if len(det_results) != len(annotations):
        raise DataError(f"{len(det_results)} detection results but {len(annotations)} annotated images")
    num_classes = len(det_results[0]) if len(det_results) else len(class_names or ())
    per_image = []
    gt_label_lists = []
    for i, (dets, ann) in enumerate(zip(det_results, annotations)):
        where = f"image {i}"
        if len(dets) != num_classes:
            raise DataError(f"{where}: detections for {len(dets)} classes, image 0 has {num_classes}")
        per_image.append(_image_tpfp(dets, ann, iou_thr, use_legacy_coordinate, where))
        gt_label_lists.append(np.asarray(ann["labels"], dtype=np.int64).reshape(-1))
    if per_image:
        labels, scores, tp, fp = (np.concatenate(parts) for parts in zip(*per_image))
    else:
        labels, scores = np.zeros(0, np.int64), np.zeros(0, np.float32)
        tp = fp = np.zeros(0, bool)
    all_gt_labels = np.concatenate(gt_label_lists) if gt_label_lists else np.zeros(0, np.int64)
    num_gts = np.bincount(all_gt_labels[(all_gt_labels >= 0) & (all_gt_labels < num_classes)],
                          minlength=num_classes)
    eps = np.finfo(np.float32).eps
    results = []
    for c in range(num_classes):
        mine = labels == c
        order = np.argsort(-scores[mine])
        tp_cum = np.cumsum(tp[mine][order], dtype=np.float64)
        fp_cum = np.cumsum(fp[mine][order], dtype=np.float64)
        recall = tp_cum / max(num_gts[c], eps)
        precision = tp_cum / np.maximum(tp_cum + fp_cum, eps)
        results.append(dict(num_gts=int(num_gts[c]), num_dets=int(mine.sum()), recall=recall,
                            precision=precision, ap=average_precision(recall, precision, eval_mode)))
    aps = [r["ap"] for r in results if r["num_gts"] > 0]
    mean_ap = float(np.mean(aps)) if aps else 0.0
    emit = logger.info if logger is not None else print_fn
    if emit is not None:
        emit(format_map_table(results, mean_ap, class_names, iou_thr, eval_mode))
    return mean_ap, results


def format_map_table(results: Sequence[dict], mean_ap: float, class_names=None, iou_thr=None,
                     eval_mode=None) -> str:
    """class | gts | dets | recall | ap table (recall at the last detection), mAP last (mmdet's
    ``print_map_summary``)."""
    names = list(class_names) if class_names is not None else [str(i) for i in range(len(results))]
    rows = [[name, r["num_gts"], r["num_dets"], f"{r['recall'][-1] if len(r['recall']) else 0.0:.3f}",
             f"{r['ap']:.3f}"] for name, r in zip(names, results)]
    rows.append(["mAP", "", "", "", f"{mean_ap:.3f}"])
    title = "\nVOC mAP" + (f" at IoU {iou_thr}" if iou_thr is not None else "") + \
        (f" ({eval_mode})" if eval_mode else "") + ":\n"
    return title + _format_table(["class", "gts", "dets", "recall", "ap"], rows)


def as_mmdet_lists(result, num_classes: int) -> list:
    """One image's detections as per-class [n, 5] arrays: a ``DetResult``, mmdet's list, or
    mmdet's (bbox lists, segm lists) tuple of a mask model."""
    from detzoo.evaluation.proposals_io import result_to_mmdet_lists
    from detzoo.structures import DetResult

    if isinstance(result, DetResult):
        lists = result_to_mmdet_lists(result, num_classes)
        return lists[0] if isinstance(lists, tuple) else lists
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], list):
        result = result[0]
    if not isinstance(result, list) or len(result) != num_classes:
        raise DataError(f"a detection result must be a DetResult or a list of {num_classes} per-class "
                        f"[n, 5] arrays, got {type(result).__name__}"
                        + (f" of length {len(result)}" if isinstance(result, list) else ""))
    return result


def voc_results_to_json(results: Sequence, img_ids: Sequence[str], num_classes: int) -> list[dict]:
    """COCO-style result entries for a VOC dataset: ``image_id`` is the VOC image id (a string),
    ``category_id`` is label + 1 (VOC has no category ids), bbox xywh with w = x2 - x1."""
    if len(results) != len(img_ids):
        raise DataError(f"{len(results)} results but {len(img_ids)} images")
    entries = []
    for result, img_id in zip(results, img_ids):
        for label, dets in enumerate(as_mmdet_lists(result, num_classes)):
            for x1, y1, x2, y2, score in np.asarray(dets, dtype=np.float64).reshape(-1, 5).tolist():
                entries.append(dict(image_id=img_id, category_id=label + 1,
                                    bbox=[x1, y1, x2 - x1, y2 - y1], score=score))
    return entries
