"""detzoo flops CONFIG [--shape W H] [--depth 2] [--json FILE]

Parameters and FLOPs per module of a detector's inference, counted by PyTorch's
``FlopCounterMode`` (detzoo/tools/flops.py).
"""
from __future__ import annotations

import argparse
import json

from .common import add_config_arguments, load_cli_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--shape", type=int, nargs="+", default=[1280, 800], metavar="N",
                        help="input WIDTH HEIGHT, or one size for a square (default 1280 800)")
    parser.add_argument("--depth", type=int, default=2,
                        help="show modules up to this nesting depth (0 = total only; default 2)")
    parser.add_argument("--json", metavar="FILE", help="also write every module's counts to this JSON file")


def run(args: argparse.Namespace) -> int:
    import torch

    from detzoo.models.builder import build_detector
    from detzoo.tools.flops import count_flops, format_table, parse_shape, summary
    from detzoo.utils.fileio import atomic_write_text

    width, height = parse_shape(args.shape)
    cfg = load_cli_config(args)
    torch.manual_seed(0)
    model = build_detector(cfg["model"]).eval()
    rows, total, (pad_h, pad_w) = count_flops(model, width, height)
    print(format_table(rows, total, max_depth=max(args.depth, 0)))
    totals = summary(rows, total)
    padded = f" (padded to {pad_w}x{pad_h})" if (pad_h, pad_w) != (height, width) else ""
    print(f"\ninput 1x3x{height}x{width} (W {width}, H {height}){padded}: "
          f"{totals['gflops']:.2f} GFLOPs = {totals['gmacs']:.2f} GMACs (MMDetection's 'GFLOPs' "
          f"count multiply-adds), {totals['mparams']:.2f} M parameters")
    print("counted by torch.utils.flop_counter: convolutions and matrix products only")
    if args.json:
        record = dict(config=args.config, width=width, height=height, padded=[pad_w, pad_h], **totals,
                      modules=[dict(name=n, params=p, flops=f) for n, p, f in rows])
        atomic_write_text(args.json, json.dumps(record, indent=1) + "\n")
        print(f"counts written to {args.json}")
    return 0
