"""detzoo browse-dataset CONFIG --out-dir D [--phase train|val] [--num N]

Writes each image with its ground truth (boxes, labels, masks) as the model sees it: after the
training pipeline for ``train`` (detzoo/tools/browse.py).
"""
from __future__ import annotations

import argparse

from .common import add_config_arguments, load_cli_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--out-dir", required=True, help="folder for the drawn pictures")
    parser.add_argument("--phase", choices=("train", "val"), default="train",
                        help="train: after the training pipeline (default); val: the validation "
                             "annotations on the original images")
    parser.add_argument("--num", type=int, help="draw only the first N images")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pipeline's random steps")
    parser.add_argument("--not-show", action="store_true",
                        help="accepted for MMDetection compatibility: pictures are only written, "
                             "never shown in a window")


def run(args: argparse.Namespace) -> int:
    from detzoo.errors import ConfigError
    from detzoo.tools.browse import browse_dataset

    if args.num is not None and args.num < 1:
        raise ConfigError(f"--num {args.num} must be at least 1")
    cfg = load_cli_config(args)
    written = browse_dataset(cfg, args.out_dir, phase=args.phase, num=args.num, seed=args.seed)
    print(f"{len(written)} pictures written to {args.out_dir}")
    return 0
