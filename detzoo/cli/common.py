"""Argument helpers shared by the sub-commands."""
from __future__ import annotations

import argparse
from typing import List, Optional


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="config file path or zoo name (e.g. faster_rcnn_r50_fpn_1x_coco)")
    parser.add_argument("--cfg-options", nargs="+", metavar="KEY=VALUE", default=[],
                        help="override config entries, e.g. optimizer.lr=0.01 data.samples_per_gpu=4 "
                             "(lists as a,b,c)")


def load_cli_config(args: argparse.Namespace):
    from detzoo.config import load_config, parse_cli_options

    cfg = load_config(args.config)
    if args.cfg_options:
        cfg.merge_from_dotted(parse_cli_options(args.cfg_options))
    return cfg


def pick_device(requested: Optional[str]) -> str:
    import torch

    if requested:
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"
