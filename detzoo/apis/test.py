"""The test loop: run a detector over a dataset, collect and evaluate its detections."""
from __future__ import annotations

import os.path as osp
from typing import List, Optional, Sequence, Union

import torch
from tqdm import tqdm

from detzoo.structures import DetResult

# file extensions written as MMDetection-style pickles (proposal files, 2.x test results)
PICKLE_EXTS = (".pkl", ".pickle")


def _sampler_indices(loader) -> List[int]:
    """The dataset indices the loader's sampler yields, in order (a seed-carrying sampler
    yields ``(index, seed)`` pairs)."""
    sampler = loader.sampler
    return [item[0] if isinstance(item, tuple) else int(item) for item in sampler]


@torch.inference_mode()
def run_test(model, dataset, samples_per_gpu: int = 1, workers_per_gpu: int = 0, show_dir: Optional[str] = None,
             show_score_thr: float = 0.3, progress: bool = True,
             distributed: Optional[bool] = None) -> List[DetResult]:
    """Detections for every image of ``dataset``, in dataset order, in original-image pixels.

    ``show_dir``: also write each image with its detections drawn (same file name).
    Batches that carry precomputed ``proposals`` (Fast R-CNN datasets) hand them to
    ``model.predict(..., proposals=...)`` on the model's device.

    ``distributed`` (default: whether a process group of more than one process exists): every
    process runs its shard of the dataset (torch's ``DistributedSampler`` without shuffling,
    padded with repeats) and the results are gathered with ``all_gather_object``; every process
    returns the full list in dataset order. Only rank 0 shows a progress bar. All processes
    must call it together.
    """
    from detzoo.data import build_dataloader
    from detzoo.engine.dist import collect_in_order, get_dist_info

    rank, world_size = get_dist_info()
    if distributed is None:
        distributed = world_size > 1
    loader = build_dataloader(dataset, samples_per_gpu, workers_per_gpu, shuffle=False, dist=distributed)
    indices = _sampler_indices(loader) if distributed else None
    was_training = model.training
    model.eval()
    results: List[DetResult] = []
    for batch in tqdm(loader, desc="test", unit="img", unit_scale=samples_per_gpu * world_size,
                      disable=not progress or rank != 0, dynamic_ncols=True, leave=False):
        img = batch["img"].to(model.device)
        extra = {}
        if "proposals" in batch:
            extra["proposals"] = [p.to(model.device) for p in batch["proposals"]]
        batch_results = [r.to("cpu") for r in model.predict(img, batch["img_metas"], rescale=True, **extra)]
        results.extend(batch_results)
        if show_dir:
            _draw(batch["img_metas"], batch_results, model.class_names, show_dir, show_score_thr)
    model.train(was_training)
    if distributed:
        results = collect_in_order(list(zip(indices, results)), len(dataset))
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
    image_id is the VOC id.

    Inside a process group of several processes the test runs sharded (see :func:`run_test`)
    and only rank 0 evaluates and writes ``out_file``; the other ranks return ``{}``."""
    from detzoo.data.voc import VOCDataset
    from detzoo.evaluation import CocoEvaluator

    if results is None:
        results = run_test(model, dataset, samples_per_gpu, workers_per_gpu, **test_kwargs)
    from detzoo.engine.dist import get_dist_info

    if get_dist_info()[0] != 0 and test_kwargs.get("distributed", True) is not False:
        return {}  # distributed: the results were gathered; rank 0 evaluates and reports
    if isinstance(dataset, VOCDataset):
        if out_file:
            save_results(out_file, results, dataset)
        return dataset.evaluate(results, metric)
    # the model's class names decide the label -> category_id map (by name for torchvision's 91
    # ids); proposals are scored class-agnostically (useCats=0), their labels need no map
    class_agnostic = ({metric} if isinstance(metric, str) else set(metric)) == {"proposal"}
    class_names = None if class_agnostic else getattr(model, "class_names", None)
    evaluator = CocoEvaluator.from_dataset(dataset, class_names=class_names)
    metas = [{"img_id": img_id} for img_id in dataset.img_ids]
    evaluator.process(metas, results)
    if out_file:
        evaluator.save(out_file)
    return evaluator.evaluate(metric, classwise=classwise)


def save_results(path: str, results, dataset, proposals: bool = False,
                 class_names: Optional[Sequence[str]] = None) -> str:
    """Write ``results`` (dataset order) to ``path`` atomically; returns what was written.

    ``proposals``: an RPN's proposal file (.pkl MMDetection layout, or .json). Otherwise .pkl /
    .pickle is MMDetection 2.x's per-class pickle; anything else is a results JSON: COCO results
    for COCO-style datasets, per-image detections with VOC image ids for VOC datasets.
    ``class_names``: the model's; COCO category ids then follow
    :func:`detzoo.evaluation.results_io.label_to_cat_ids` (by name when they differ from the dataset's).
    """
    from detzoo.data.voc import VOCDataset
    from detzoo.evaluation import save_mmdet_results, save_results_json, voc_results_to_json
    from detzoo.evaluation.proposals_io import save_proposals
    from detzoo.evaluation.results_io import label_to_cat_ids, results_to_coco_json

    if proposals:
        save_proposals(path, results)
        return f"proposals of {len(results)} images"
    if osp.splitext(path)[1].lower() in PICKLE_EXTS:
        save_mmdet_results(path, results, len(dataset.CLASSES))
        return "detections (MMDetection 2.x pickle)"
    if isinstance(dataset, VOCDataset):
        save_results_json(path, voc_results_to_json(results, dataset.img_ids, len(dataset.CLASSES)))
    else:
        cat_ids = label_to_cat_ids(class_names, dataset.CLASSES, dataset.cat_ids)
        save_results_json(path, results_to_coco_json(results, dataset.img_ids, cat_ids, class_names=class_names))
    return "detections"
