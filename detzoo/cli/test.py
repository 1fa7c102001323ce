"""detzoo test CONFIG CHECKPOINT --eval bbox [--out results.json] [--show-dir vis/]"""
from __future__ import annotations

import argparse

from .common import add_config_arguments, load_cli_config, pick_device


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("checkpoint", help="model weights (.pth: detzoo or MMDetection)")
    parser.add_argument("--eval", nargs="+", default=[], metavar="METRIC", help="metrics, e.g. bbox")
    parser.add_argument("--out", help="write detections as a COCO results JSON")
    parser.add_argument("--show-dir", help="write each test image with its detections drawn here")
    parser.add_argument("--show-score-thr", type=float, default=0.3)
    parser.add_argument("--classwise", action="store_true", help="also print per-class AP")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    parser.add_argument("--batch-size", type=int, default=1, help="images per forward pass")
    parser.add_argument("--workers", type=int, default=None, help="data loading workers (default: config)")
    parser.add_argument("--unsafe-load", action="store_true",
                        help="allow legacy pickled checkpoints (runs code from the file: trusted files only)")


def run(args: argparse.Namespace) -> int:
    from detzoo.apis.inference import init_detector
    from detzoo.apis.test import evaluate_detector, run_test
    from detzoo.config import instantiate
    from detzoo.evaluation import format_metrics_line
    from detzoo.evaluation.results_io import results_to_coco_json, save_results_json

    cfg = load_cli_config(args)
    model = init_detector(cfg, args.checkpoint, device=pick_device(args.device), allow_pickle=args.unsafe_load)
    test_cfg = dict(cfg["data"]["test"])
    test_cfg["test_mode"] = True
    dataset = instantiate(test_cfg)
    workers = args.workers if args.workers is not None else cfg["data"].get("workers_per_gpu", 0)
    results = run_test(model, dataset, args.batch_size, workers, show_dir=args.show_dir,
                       show_score_thr=args.show_score_thr)
    if args.out:
        save_results_json(args.out, results_to_coco_json(results, dataset.img_ids, dataset.cat_ids))
        print(f"detections written to {args.out}")
    if args.show_dir:
        print(f"pictures written to {args.show_dir}")
    if args.eval:
        metrics = evaluate_detector(model, dataset, args.eval, results=results, classwise=args.classwise)
        print(format_metrics_line(metrics))
    return 0
