"""The test loop: run a detector over a dataset, collect and evaluate its detections."""
from __future__ import annotations

import os.path as osp
from typing import List, Optional, Sequence, Union

import torch
from tqdm import tqdm

from detzoo.structures import DetResult

# file extensions written as MMDetection-style pickles (proposal files, 2.x test results)
PICKLE_EXTS = (".pkl", ".pickle")


@torch.inference_mode()
def run_test(model, dataset, samples_per_gpu: int = 1, workers_per_gpu: int = 0, show_dir: Optional[str] = None,
             show_score_thr: float = 0.3, progress: bool = True) -> List[DetResult]:
    """Detections for every image of ``dataset``, in dataset order, in original-image pixels.

    ``show_dir``: also write each image with its detections drawn (same file name).
    Batches that carry precomputed ``proposals`` (Fast R-CNN datasets) hand them to
    ``model.predict(..., proposals=...)`` on the model's device.
    """
    from detzoo.data import build_dataloader

    loader = build_dataloader(dataset, samples_per_gpu, workers_per_gpu, shuffle=False, dist=False)
    was_training = model.training
    model.eval()
    results: List[DetResult] = []
    for batch in tqdm(loader, desc="test", unit="img", unit_scale=samples_per_gpu, disable=not progress,
                      dynamic_ncols=True, leave=False):
        img = batch["img"].to(model.device)
        extra = {}
        if "proposals" in batch:
            extra["proposals"] = [p.to(model.device) for p in batch["proposals"]]
        batch_results = [r.to("cpu") for r in model.predict(img, batch["img_metas"], rescale=True, **extra)]
        results.extend(batch_results)
        if show_dir:
            _draw(batch["img_metas"], batch_results, model.class_names, show_dir, show_score_thr)
    model.train(was_training)
    return results


def _draw(img_metas, results, class_names, show_dir, score_thr) -> None:
    from detzoo.data.transforms import decode_image
    from detzoo.visualization import draw_detections, imwrite_atomic

    for meta, result in zip(img_metas, results):
        if not meta.get("filename"):
            continue
        img = decode_image(meta["filename"])
        drawn = draw_detections(img, result, class_names, score_thr=score_thr)
        imwrite_atomic(osp.join(show_dir, osp.basename(meta["filename"])), drawn)


def evaluate_detector(model, dataset, metric: Union[str, Sequence[str]] = "bbox", samples_per_gpu: int = 1,
                      workers_per_gpu: int = 0, results: Optional[List[DetResult]] = None,
                      out_file: Optional[str] = None, classwise: bool = False, **test_kwargs) -> dict:
    """Run (unless ``results`` are given) and evaluate with COCO metrics; returns MMDetection's
    metric names (bbox_mAP, bbox_mAP_50, ...). ``out_file`` saves the COCO results JSON.

    A ``VOCDataset`` evaluates itself instead (metric ``mAP``: returns mAP, AP50; docs/voc.md);
    its ``out_file`` is MMDetection's pickle when named .pkl, else COCO-style JSON entries whose
    image_id is the VOC id."""
    from detzoo.data.voc import VOCDataset
    from detzoo.evaluation import CocoEvaluator

    if results is None:
        results = run_test(model, dataset, samples_per_gpu, workers_per_gpu, **test_kwargs)
    if isinstance(dataset, VOCDataset):
        if out_file:
            save_results(out_file, results, dataset)
        return dataset.evaluate(results, metric)
    evaluator = CocoEvaluator.from_dataset(dataset)
    metas = [{"img_id": img_id} for img_id in dataset.img_ids]
    evaluator.process(metas, results)
    if out_file:
        evaluator.save(out_file)
    return evaluator.evaluate(metric, classwise=classwise)


def save_results(path: str, results, dataset, proposals: bool = False) -> str:
    """Write ``results`` (dataset order) to ``path`` atomically; returns what was written.

    ``proposals``: an RPN's proposal file (.pkl MMDetection layout, or .json). Otherwise .pkl /
    .pickle is MMDetection 2.x's per-class pickle; anything else is a results JSON: COCO results
    for COCO-style datasets, per-image detections with VOC image ids for VOC datasets.
    """
    from detzoo.data.voc import VOCDataset
    from detzoo.evaluation import save_mmdet_results, save_results_json, voc_results_to_json
    from detzoo.evaluation.proposals_io import save_proposals
    from detzoo.evaluation.results_io import results_to_coco_json

    if proposals:
        save_proposals(path, results)
        return f"proposals of {len(results)} images"
    if osp.splitext(path)[1].lower() in PICKLE_EXTS:
        save_mmdet_results(path, results, len(dataset.CLASSES))
        return "detections (MMDetection 2.x pickle)"
    if isinstance(dataset, VOCDataset):
        save_results_json(path, voc_results_to_json(results, dataset.img_ids, len(dataset.CLASSES)))
    else:
        save_results_json(path, results_to_coco_json(results, dataset.img_ids, dataset.cat_ids))
    return "detections"
