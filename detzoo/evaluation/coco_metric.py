"""COCO bbox / segm / proposal metrics with MMDetection's names and semantics.

Follows MMDetection 2.x ``CocoDataset.evaluate`` (mmdet/datasets/coco.py), which 3.x's
``CocoMetric`` keeps:

* ``COCOeval.params.maxDets = list(proposal_nums)`` (100, 300, 1000) for every metric. pycocotools'
  ``summarize`` then reports mAP at maxDets=100 but mAP_50/75/s/m/l at maxDets[2]=1000, and AR@n
  at each n (fidelity B.13; it matters only with >100 detections per image).
* Values are rounded to 3 decimals (``float(f'{x:.3f}')``); ``<metric>_mAP_copypaste`` holds the six
  AP numbers as one string.
* segm results are evaluated without their ``bbox`` so the small/medium/large split uses the mask
  area (mmdet >= 2.12).
* ``proposal`` is class-agnostic (``useCats = 0``) and returns unprefixed ``AR@100`` etc.
* Classwise AP uses the last maxDets (1000), area 'all', as MMDetection.
"""
from __future__ import annotations

import json
import math
import os
import warnings
from collections import OrderedDict
from typing import Callable, Optional, Sequence, Union

import numpy as np
from pycocotools.cocoeval import COCOeval

from detzoo.errors import ConfigError, DataError
from detzoo.utils.fileio import atomic_write_text
from detzoo.evaluation.results_io import (load_coco_gt, load_results_json,
                                          quiet_stdout, validate_results)

METRICS = ("bbox", "segm", "proposal")
AP_ITEMS = ("mAP", "mAP_50", "mAP_75", "mAP_s", "mAP_m", "mAP_l")


def ar_items(proposal_nums: Sequence[int]) -> tuple[str, ...]:
    """Names of ``COCOeval.stats[6:12]`` for these maxDets (mmdet: AR@100 ... AR_l@1000)."""
    small, medium, large = (f"AR_{size}@{proposal_nums[2]}" for size in "sml")
    return tuple(f"AR@{n}" for n in proposal_nums) + (small, medium, large)


def default_iou_thrs() -> np.ndarray:
    """0.50:0.05:0.95, built exactly as pycocotools does (AP50/AP75 look thresholds up by ==)."""
    return np.linspace(.5, 0.95, int(np.round((0.95 - .5) / .05)) + 1, endpoint=True)


def _format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"

    return "\n".join([rule, line(headers), rule, *map(line, rows), rule])


def _round3(value: float) -> float:
    return float(f"{value:.3f}")


def _mean_precision(precision: np.ndarray) -> float:
    valid = precision[precision > -1]
    return float(np.mean(valid)) if valid.size else float("nan")


def _classwise(coco_eval: COCOeval, coco_gt, cat_ids, metric, print_fn) -> dict:
    """Per-class AP (+AP50, AP75, APs/m/l) at the last maxDets; prints a table (mmdet 3.x)."""
    precisions = coco_eval.eval["precision"]  # [iou, recall, class, area, maxDets]
    iou_thrs = coco_eval.params.iouThrs
    iou_index = {thr: np.where(np.isclose(iou_thrs, thr))[0] for thr in (0.5, 0.75)}
    out, rows = OrderedDict(), []
    for k, cat_id in enumerate(cat_ids):
        name = coco_gt.loadCats(cat_id)[0]["name"]
        ap = _mean_precision(precisions[:, :, k, 0, -1])
        cells = [ap] + [_mean_precision(precisions[iou_index[t], :, k, 0, -1]) for t in (.5, .75)]
        cells += [_mean_precision(precisions[:, :, k, area, -1]) for area in (1, 2, 3)]
        out[f"{metric}_{name}_precision"] = round(ap, 3)
        rows.append([name] + [f"{c:.3f}" for c in cells])
    print_fn(f"\nPer-class {metric} AP (maxDets={coco_eval.params.maxDets[-1]}):\n"
             + _format_table(["category", "AP", "AP50", "AP75", "APs", "APm", "APl"], rows))
    return out


def _predictions_for(dets: list[dict], metric: str) -> list[dict]:
    """Shallow copies (loadRes writes into them) carrying only what ``metric`` evaluates."""
    need, drop = ("segmentation", "bbox") if metric == "segm" else ("bbox", "segmentation")
    preds = []
    for index, det in enumerate(dets):
        if need not in det:
            raise DataError(f"detection {index} has no '{need}': cannot evaluate '{metric}'"
                            + (" (the model gave no masks)" if metric == "segm" else ""))
        preds.append({k: v for k, v in det.items() if k != drop})
    return preds


def _zero_metrics(metric: str, proposal_nums) -> dict:
    if metric == "proposal":
        return OrderedDict((item, 0.0) for item in ar_items(proposal_nums))
    out = OrderedDict((f"{metric}_{item}", 0.0) for item in AP_ITEMS + ar_items(proposal_nums))
    out[f"{metric}_mAP_copypaste"] = " ".join(["0.000"] * 6)
    return out


def evaluate_coco(coco_gt, dets: Union[list, str], metric: Union[str, Sequence[str]] = "bbox",
                  classwise: bool = False, proposal_nums: Sequence[int] = (100, 300, 1000),
                  iou_thrs: Optional[Sequence[float]] = None,
                  img_ids: Optional[Sequence[int]] = None,
                  cat_ids: Optional[Sequence[int]] = None,
                  logger=None, print_fn: Optional[Callable[[str], None]] = print,
                  verbose: bool = False) -> "OrderedDict[str, float | str]":
    """COCO metrics of ``dets`` against ``coco_gt``, named as MMDetection names them.

    coco_gt: a pycocotools ``COCO`` or the path of an annotation file.
    dets: COCO result entries (see results_io) or the path of a results JSON.
    metric: "bbox", "segm", "proposal" or several of them.
    proposal_nums: the three maxDets; mAP is read at maxDets=100, so keep 100 among them.
    img_ids / cat_ids: restrict the evaluation (default: all of the annotation file); cat_ids
        order is the classwise table's order.
    Returns e.g. ``bbox_mAP, bbox_mAP_50, bbox_mAP_75, bbox_mAP_s/m/l, bbox_AR@100, bbox_AR@300,
    bbox_AR@1000, bbox_AR_s/m/l@1000, bbox_mAP_copypaste`` (+ ``bbox_<class>_precision`` with
    classwise); ``proposal`` gives ``AR@100 ... AR_l@1000``. No detections -> zeros and a warning.
    pycocotools' own printing is hidden unless ``verbose``; a metric | value table goes to
    ``logger.info`` or ``print_fn`` (None: silent).
    """
    emit = logger.info if logger is not None else (print_fn or (lambda _: None))
    metrics = [metric] if isinstance(metric, str) else list(metric)
    for name in metrics:
        if name not in METRICS:
            raise ConfigError(f"unknown metric '{name}': choose from {', '.join(METRICS)}")
    if len(proposal_nums) != 3:
        raise ConfigError(f"proposal_nums must hold 3 numbers (pycocotools summarize reads "
                          f"maxDets[0..2]), got {tuple(proposal_nums)}")
    coco_gt = load_coco_gt(coco_gt, verbose=verbose)
    if isinstance(dets, (str, os.PathLike)):
        dets = load_results_json(os.fspath(dets), coco_gt)
    else:
        validate_results(dets, "detections", coco_gt)
    thrs = default_iou_thrs() if iou_thrs is None else np.asarray(iou_thrs, dtype=np.float64)
    eval_cat_ids = list(coco_gt.getCatIds() if cat_ids is None else cat_ids)
    eval_img_ids = list(coco_gt.getImgIds() if img_ids is None else img_ids)

    results: OrderedDict = OrderedDict()
    for name in metrics:
        preds = _predictions_for(dets, name)
        if not preds:
            message = f"no detections to evaluate for '{name}': all its metrics are 0"
            warnings.warn(message)
            emit(message)
            results.update(_zero_metrics(name, proposal_nums))
            continue
        iou_type = "segm" if name == "segm" else "bbox"
        with quiet_stdout(not verbose):
            coco_eval = COCOeval(coco_gt, coco_gt.loadRes(preds), iou_type)
            coco_eval.params.catIds = eval_cat_ids
            coco_eval.params.imgIds = eval_img_ids
            coco_eval.params.maxDets = list(proposal_nums)
            coco_eval.params.iouThrs = thrs
            if name == "proposal":
                coco_eval.params.useCats = 0
            coco_eval.evaluate()
            coco_eval.accumulate()
            coco_eval.summarize()
        stats = coco_eval.stats
        ar_names = ar_items(proposal_nums)
        if name == "proposal":
            rows = [(item, _round3(stats[6 + i])) for i, item in enumerate(ar_names)]
        else:
            rows = [(f"{name}_{item}", _round3(stats[i])) for i, item in enumerate(AP_ITEMS)]
            rows += [(f"{name}_{item}", _round3(stats[6 + i])) for i, item in enumerate(ar_names)]
        emit(f"\nEvaluating {name}:\n"
             + _format_table(["metric", "value"], [(k, f"{v:.3f}") for k, v in rows]))
        results.update(rows)
        if name != "proposal":
            results[f"{name}_mAP_copypaste"] = " ".join(f"{a:.3f}" for a in stats[:6])
            if classwise:
                results.update(_classwise(coco_eval, coco_gt, eval_cat_ids, name, emit))
    return results


def format_metrics_line(metrics: dict) -> str:
    """One log line: ``bbox_mAP: 0.374, bbox_mAP_50: 0.581, ...`` (floats with 3 decimals)."""
    parts = []
    for key, value in metrics.items():
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        parts.append(f"{key}: {shown}")
    return ", ".join(parts)


def _json_safe(metrics: dict) -> dict:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in metrics.items()}


def evaluate_results_file(ann_file: str, results_file: str,
                          metrics: Union[str, Sequence[str]] = "bbox",
                          out: Optional[str] = None, classwise: bool = False,
                          proposal_nums: Sequence[int] = (100, 300, 1000),
                          print_fn: Optional[Callable[[str], None]] = print) -> dict:
    """Evaluate a saved results JSON against a COCO annotation file (``detzoo eval-results``).

    Writes the metrics as JSON to ``out`` (atomically; NaN as null) when given.
    """
    coco_gt = load_coco_gt(ann_file)
    dets = load_results_json(results_file, coco_gt)
    result = evaluate_coco(coco_gt, dets, metric=metrics, classwise=classwise,
                           proposal_nums=proposal_nums, print_fn=print_fn)
    if out is not None:
        atomic_write_text(out, json.dumps(_json_safe(result), indent=2) + "\n")
    return result
