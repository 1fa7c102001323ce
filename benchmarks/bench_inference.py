"""Detector inference on shared/data/demo.jpg (1333x800 after resize), as seconds and as the ratio
to the same-run ResNet-50 trunk yardstick (shared/bench/yardstick.py; targets in
shared/spec/performance.md).

    .venv/bin/python benchmarks/bench_inference.py [--config NAME [NAME ...]] [--reps 5]

Several configs are measured in one run against one yardstick (e.g. Faster vs Mask vs Cascade
R-CNN: ``--config faster_rcnn_r50_fpn_1x_coco mask_rcnn_r50_fpn_1x_coco cascade_rcnn_r50_fpn_1x_coco``).

End to end as a user calls it: decode, resize, normalise, forward, post-processing
(``inference_detector``), median of ``--reps`` after 2 warm-ups, 2 threads. Random weights: the
post-processing then keeps 100 detections at score_thr 0, like a trained model on this photo.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from timing import repeat_times  # benchmarks/timing.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def median_time(fn, reps: int) -> float:
    return statistics.median(repeat_times(fn, reps))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", nargs="+", default=["faster_rcnn_r50_fpn_1x_coco"])
    parser.add_argument("--image", default=str(SHARED / "data" / "demo.jpg"))
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    sys.path.insert(0, str(SHARED / "bench"))
    import yardstick  # the shared, same-run yardstick; not part of the package

    from detzoo.apis import inference_detector, init_detector

    torch.set_num_threads(2)
    trunk = yardstick.time_trunk()
    measured = []
    for config in args.config:
        torch.manual_seed(0)
        model = init_detector(config, device="cpu", cfg_options=_all_detections(config))
        with torch.inference_mode():
            detector = median_time(lambda: inference_detector(model, args.image), args.reps)
            parts = breakdown(model, args.image)
        measured.append((config, detector, parts))
        del model
    trunk_after = yardstick.time_trunk()
    trunk_mid = statistics.median([trunk, trunk_after])
    for config, detector, parts in measured:
        report = {"config": config, "detector_s": round(detector, 3), "trunk_s": round(trunk_mid, 3),
                  "ratio": round(detector / trunk_mid, 2), **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in parts.items()}}
        if args.json:
            print(json.dumps(report))
        else:
            for key, value in report.items():
                print(f"{key:>14}: {value}")
            print()


def _all_detections(config: str) -> dict:
    """score_thr 0, so random weights keep as many detections as a trained model on a busy photo."""
    from detzoo.config import load_config

    test_cfg = load_config(config)["model"]["test_cfg"]
    return {"model.test_cfg.rcnn.score_thr": 0.0} if "rcnn" in test_cfg else {"model.test_cfg.score_thr": 0.0}


def breakdown(model, image) -> dict:
    """Seconds per stage of one forward (after the warm-ups above)."""
    from detzoo.apis.inference import prepare_images

    t0 = time.perf_counter()
    batch = prepare_images(model.cfg, [image], model.device)
    t1 = time.perf_counter()
    feats = model.extract_feat(batch["img"])
    t2 = time.perf_counter()
    parts = {"preprocess_s": t1 - t0, "backbone_neck_s": t2 - t1}
    if hasattr(model, "rpn_head"):
        proposals = model.rpn_head.simple_test_rpn(feats, batch["img_metas"])
        t3 = time.perf_counter()
        model.roi_head.simple_test(feats, proposals, batch["img_metas"])
        parts.update(rpn_s=t3 - t2, roi_head_s=time.perf_counter() - t3)
    else:  # one-stage: the dense head and its post-processing
        model.bbox_head.predict(feats, batch["img_metas"])
        parts.update(head_s=time.perf_counter() - t2)
    parts["input_hw"] = tuple(batch["img"].shape[-2:])
    return parts


if __name__ == "__main__":
    main()
