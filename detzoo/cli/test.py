"""detzoo test CONFIG CHECKPOINT --eval bbox [--out results.json] [--show-dir vis/]

With an RPN config: ``--eval proposal`` (average recall) and ``--out proposals.pkl`` (a proposal
file for Fast R-CNN, docs/proposals.md).

Distributed (docs/distributed.md): ``torchrun --nproc_per_node=N -m detzoo.cli.main test CONFIG CKPT
--eval bbox --launcher pytorch``: each process tests its shard, rank 0 gathers, evaluates, writes.
"""
from __future__ import annotations

import argparse
import os.path as osp

from .common import add_config_arguments, load_cli_config, pick_device


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("checkpoint", help="model weights (.pth: detzoo or MMDetection)")
    parser.add_argument("--eval", nargs="+", default=[], metavar="METRIC",
                        help="metrics: bbox, segm, proposal (an RPN: proposal only)")
    parser.add_argument("--out", help="write the results: .json = COCO results JSON, .pkl = MMDetection's "
                                      "pickle (per image per class [n, 5] arrays); for an RPN the proposal "
                                      "file (.pkl as MMDetection, or .json)")
    parser.add_argument("--show-dir", help="write each test image with its detections drawn here")
    parser.add_argument("--show-score-thr", type=float, default=0.3)
    parser.add_argument("--classwise", action="store_true", help="also print per-class AP")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    parser.add_argument("--batch-size", type=int, default=1, help="images per forward pass")
    parser.add_argument("--workers", type=int, default=None, help="data loading workers (default: config)")
    parser.add_argument("--launcher", choices=["none", "pytorch"], default="none",
                        help="'pytorch' under torchrun: shard the test set over the processes")
    parser.add_argument("--unsafe-load", action="store_true",
                        help="allow legacy pickled checkpoints (runs code from the file: trusted files only)")


def _check_request(args: argparse.Namespace, is_rpn: bool) -> None:
    from detzoo.apis.test import PICKLE_EXTS
    from detzoo.errors import ConfigError

    if not is_rpn:
        return
    wrong = [m for m in args.eval if m != "proposal"]
    if wrong:
        raise ConfigError(f"an RPN outputs class-agnostic proposals: evaluate them with --eval proposal, "
                          f"not {' '.join(wrong)}")
    if args.out and osp.splitext(args.out)[1].lower() not in PICKLE_EXTS + (".json",):
        raise ConfigError(f"--out {args.out}: an RPN writes a proposal file: name it .pkl (MMDetection's "
                          "format) or .json")


def _save_results(path: str, results, dataset, is_rpn: bool, class_names=None) -> None:
    from detzoo.apis.test import save_results

    what = save_results(path, results, dataset, proposals=is_rpn, class_names=class_names)
    print(f"{what} written to {path}")


def run(args: argparse.Namespace) -> int:
    from detzoo.engine.dist import destroy_dist

    try:
        return _run(args)
    finally:
        destroy_dist()


def _run(args: argparse.Namespace) -> int:
    from detzoo.apis.inference import init_detector
    from detzoo.apis.test import evaluate_detector, run_test
    from detzoo.config import instantiate
    from detzoo.evaluation import format_metrics_line
    from detzoo.models.detectors.rpn import RPN

    cfg = load_cli_config(args)
    model_type = (cfg.get("model") or {}).get("type")
    _check_request(args, isinstance(model_type, type) and issubclass(model_type, RPN))  # before the work
    device = pick_device(args.device)
    rank = 0
    if args.launcher == "pytorch":
        from detzoo.engine.dist import init_dist

        rank = init_dist(device=device)[0]
        if device == "cuda":
            import torch

            device = f"cuda:{torch.cuda.current_device()}"  # this process's GPU (LOCAL_RANK)
    model = init_detector(cfg, args.checkpoint, device=device, allow_pickle=args.unsafe_load)
    is_rpn = isinstance(model, RPN)
    test_cfg = dict(cfg["data"]["test"])
    test_cfg["test_mode"] = True
    dataset = instantiate(test_cfg)
    workers = args.workers if args.workers is not None else cfg["data"].get("workers_per_gpu", 0)
    results = run_test(model, dataset, args.batch_size, workers, show_dir=args.show_dir,
                       show_score_thr=args.show_score_thr, distributed=args.launcher == "pytorch")
    if rank != 0:
        return 0  # rank 0 has every result: it writes and evaluates
    if args.out:
        _save_results(args.out, results, dataset, is_rpn, getattr(model, "class_names", None))
    if args.show_dir:
        print(f"pictures written to {args.show_dir}")
    if args.eval:
        metrics = evaluate_detector(model, dataset, args.eval, results=results, classwise=args.classwise,
                                    distributed=False)
        print(format_metrics_line(metrics))
    return 0
