"""detzoo train CONFIG [--work-dir D] [--cfg-options k=v ...] [--resume [CKPT]] [--amp]

Distributed (docs/distributed.md): ``torchrun --nproc_per_node=N -m detzoo.cli.main train CONFIG
--launcher pytorch``."""
from __future__ import annotations

import argparse
import os.path as osp

from .common import add_config_arguments, load_cli_config, pick_device


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--work-dir", help="logs, checkpoints and the resolved config (default: runs/<config name>)")
    parser.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CKPT",
                        help="continue exactly from CKPT, or from the work dir's latest checkpoint")
    parser.add_argument("--load-from", help="initialise weights from a checkpoint (non-strict)")
    parser.add_argument("--no-validate", action="store_true", help="skip evaluation after epochs")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: config's seed, else 0)")
    parser.add_argument("--deterministic", action="store_true", help="deterministic cuDNN/torch algorithms")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda if available)")
    parser.add_argument("--launcher", choices=["none", "pytorch"], default="none",
                        help="'pytorch' under torchrun for distributed training")
    parser.add_argument("--amp", action="store_true",
                        help="mixed precision: bf16 autocast on CPU, fp16 autocast + loss scaling on CUDA "
                             "(also config fp16=dict(loss_scale='dynamic') or amp=True)")
    parser.add_argument("--unsafe-load", action="store_true",
                        help="allow legacy pickled checkpoints (runs code from the file: trusted files only)")


def run(args: argparse.Namespace) -> int:
    from detzoo.apis.train import train_from_config
    from detzoo.engine.dist import destroy_dist, get_dist_info

    cfg = load_cli_config(args)
    work_dir = args.work_dir or cfg.get("work_dir") or osp.join(
        "runs", osp.splitext(osp.basename(cfg.filename or "config"))[0])
    try:
        result = train_from_config(cfg, work_dir, resume_from=args.resume or cfg.get("resume_from"),
                                   load_from=args.load_from or cfg.get("load_from"),
                                   validate=not args.no_validate, seed=args.seed, device=pick_device(args.device),
                                   deterministic=args.deterministic, allow_pickle=args.unsafe_load,
                                   distributed=args.launcher == "pytorch", amp=True if args.amp else None)
        if get_dist_info()[0] == 0:
            print(f"training finished: last checkpoint {result.get('last_checkpoint')}")
    finally:
        destroy_dist()
    return 0
