"""detzoo eval-results ANN.json RESULTS.json --metric bbox [--out metrics.json]"""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ann_file", help="COCO annotation JSON (ground truth)")
    parser.add_argument("results_file", help="COCO detection-results JSON")
    parser.add_argument("--metric", nargs="+", default=["bbox"], help="bbox, segm and/or proposal")
    parser.add_argument("--classwise", action="store_true", help="also print per-class AP")
    parser.add_argument("--out", help="write the metrics as JSON")


def run(args: argparse.Namespace) -> int:
    from detzoo.evaluation import evaluate_results_file, format_metrics_line

    metrics = evaluate_results_file(args.ann_file, args.results_file, args.metric, out=args.out,
                                    classwise=args.classwise)
    print(format_metrics_line(metrics))
    if args.out:
        print(f"metrics written to {args.out}")
    return 0
