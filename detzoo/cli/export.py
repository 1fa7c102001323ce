"""detzoo export CONFIG CHECKPOINT --format onnx --out model.onnx [--shape H W] [--dynamic]"""
from __future__ import annotations

import argparse

from .common import add_config_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("checkpoint", help="model weights (.pth), 'zoo' for the published weights, or 'none' for "
                                           "random weights (for trying the export and timing only)")
    parser.add_argument("--format", default="onnx", help="export format (only 'onnx')")
    parser.add_argument("--out", required=True, help="output .onnx file (the sidecar OUT.json is written beside it)")
    parser.add_argument("--shape", type=int, nargs=2, default=[800, 1216], metavar=("H", "W"),
                        help="network input height and width after resize and padding (default 800 1216)")
    parser.add_argument("--dynamic", action="store_true",
                        help="symbolic input height and width (any multiple of the pad divisor); --shape is then "
                             "only the example input")
    parser.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")


def run(args: argparse.Namespace) -> int:
    import os

    from detzoo.config import parse_cli_options
    from detzoo.export import export_onnx

    options = parse_cli_options(args.cfg_options) if args.cfg_options else None
    meta = export_onnx(args.config, args.checkpoint, args.out, shape=tuple(args.shape), dynamic=args.dynamic,
                       fmt=args.format, cfg_options=options, opset=args.opset)
    if meta["random_weights"]:
        print("note: checkpoint 'none': exported with random weights (detections are meaningless)")
    files = [meta["graphs"][g]["file"] for g in meta["graphs"]]
    folder = os.path.dirname(os.path.abspath(args.out))
    shape = "dynamic H x W" if meta["input"]["dynamic"] else "x".join(map(str, meta["input"]["shape"]))
    print(f"exported {meta['detector']} ({meta['kind']}, input {shape}) -> "
          + ", ".join(os.path.join(folder, f) for f in files) + f" + {args.out}.json")
    return 0
