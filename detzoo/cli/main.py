"""The ``detzoo`` command: one sub-command per module in detzoo.cli."""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import List, Optional

# sub-command -> (module, one-line help)
COMMANDS = {
    "quickstart": ("detzoo.cli.quickstart", "make a small dataset, train, evaluate and draw predictions"),
    "train": ("detzoo.cli.train", "train a detector from a config"),
    "test": ("detzoo.cli.test", "evaluate a checkpoint on a config's test set"),
    "infer": ("detzoo.cli.infer", "detect objects in images and draw them"),
    "eval-results": ("detzoo.cli.eval_results", "COCO metrics of a detection-results file"),
    "zoo": ("detzoo.cli.zoo", "the model-zoo index: list, show and download checkpoints"),
    "convert": ("detzoo.cli.convert", "convert an MMDetection, torchvision or PaddleDetection checkpoint"),
    "export": ("detzoo.cli.export", "export a detector to ONNX (for ONNX Runtime inference)"),
    "benchmark": ("detzoo.cli.benchmark", "inference speed and peak memory of a detector"),
    "flops": ("detzoo.cli.flops", "parameters and FLOPs per module of a detector"),
    "analyze-logs": ("detzoo.cli.analyze_logs", "training time and curves from .log.json files"),
    "browse-dataset": ("detzoo.cli.browse_dataset", "draw ground truth after the training pipeline"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="detzoo", description="Object detection toolbox and model zoo.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    from detzoo.errors import DetzooError

    args = build_parser().parse_args(argv)
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except DetzooError as exc:
        print(f"detzoo {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"detzoo {args.command}: error: file not found: {exc.filename or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"detzoo {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`detzoo zoo list | head`): stop quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
