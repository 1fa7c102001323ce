"""detzoo convert SRC DST --from {mmdet,torchvision,paddle} [--arch A] [--unsafe-load]

Reads another framework's checkpoint, maps it to detzoo's keys and writes DST atomically as a
detzoo checkpoint (``meta`` + ``state_dict``), then prints the config to use it with.
"""
from __future__ import annotations

import argparse
import os


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from detzoo.zoo.converters import SOURCES

    parser.add_argument("src", help="checkpoint to convert (.pth, Paddle .tar / .pdparams / folder)")
    parser.add_argument("dst", help="where to write the detzoo checkpoint (.pth)")
    parser.add_argument("--from", dest="source", required=True, choices=SOURCES,
                        help="the framework that wrote SRC")
    parser.add_argument("--arch", default=None,
                        help="architecture mapping (paddle: faster_rcnn_fpn, mask_rcnn_fpn, cascade_rcnn_fpn, "
                             "retinanet, ...; torchvision: its builder name; mmdet: rpn); default: guessed")
    parser.add_argument("--unsafe-load", action="store_true",
                        help="allow legacy pickles holding Python objects (runs code from the file: "
                             "trusted files only)")


def suggest_config(src: str, meta: dict) -> str | None:
    """The zoo config of the row whose checkpoint file is SRC, else the converter's default."""
    from detzoo.errors import DetzooError
    from detzoo.zoo.configs import configs_root
    from detzoo.zoo.index import find_entries

    name = os.path.basename(os.path.normpath(src))
    try:
        rows = [e for e in find_entries(name) if e.config_path is not None]
    except DetzooError:
        rows = []
    if rows:
        return str(rows[0].config_path)
    config = meta.get("config")
    if isinstance(config, str) and config.endswith(".py") and "\n" not in config:
        relative = config[len("configs/"):] if config.startswith("configs/") else config
        path = configs_root() / relative
        return str(path) if path.is_file() else config
    return None


def run(args: argparse.Namespace) -> int:
    from detzoo.engine.checkpoint import atomic_torch_save
    from detzoo.errors import CheckpointError
    from detzoo.zoo.converters import convert_file

    if os.path.abspath(args.src) == os.path.abspath(args.dst):
        raise CheckpointError(f"{args.dst}: the output would overwrite the input; choose another DST")
    converted = convert_file(args.src, args.source, arch=args.arch, allow_pickle=args.unsafe_load)
    atomic_torch_save(converted, args.dst)
    meta = converted["meta"]
    count = len(converted["state_dict"])
    detail = ", ".join(f"{k} {meta[k]}" for k in ("paddle_arch", "arch", "backbone") if meta.get(k))
    print(f"wrote {args.dst}: {count} tensors from {args.source}" + (f" ({detail})" if detail else ""))
    config = suggest_config(args.src, meta)
    if config:
        print(f"config: {config}")
        print(f"  e.g. detzoo test {config} {args.dst}")
    else:
        print("config: none known for this file; use the config of the same architecture")
    return 0
