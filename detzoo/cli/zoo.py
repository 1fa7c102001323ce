"""detzoo zoo list [--method X] [--min-ap N] [--status S] [--json] | show NAME | download NAME [--dir D]"""
from __future__ import annotations

import argparse
import json
import sys

STATUS_HELP = ("planned: not buildable yet; buildable: its config builds the model; loadable: "
               "buildable and its published checkpoint loads")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="zoo_command", metavar="ACTION")
    sub.required = True
    p = sub.add_parser("list", help="table of the model-zoo index",
                       description="Table of the model-zoo index. " + STATUS_HELP)
    p.add_argument("--method", help="method or folder, any case/punctuation (faster-rcnn, dcn, voc)")
    p.add_argument("--min-ap", type=float, metavar="N", help="box AP at least N")
    p.add_argument("--status", choices=("planned", "buildable", "loadable"),
                   help="at least this status (buildable includes loadable rows); see --exact")
    p.add_argument("--exact", action="store_true", help="--status matches exactly")
    p.add_argument("--source", choices=("MMDetection", "PaddleDetection", "torchvision", "detzoo"))
    p.add_argument("--json", action="store_true", help="every field of every row as JSON")
    p = sub.add_parser("show", help="all fields of one entry (or of every entry using a checkpoint)",
                       description="All fields of a zoo entry. NAME: an entry name, an alias "
                                   "(torchvision://resnet50) or a checkpoint file stem (resnet50-19c8e357).")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("download", help="download an entry's checkpoint into the cache",
                       description="Download, verify (sha256) and cache a checkpoint: resumable; "
                                   "the cache is $DETZOO_HOME/checkpoints (default ~/.cache/detzoo).")
    p.add_argument("name", help="entry name, alias or checkpoint file stem")
    p.add_argument("--dir", help="download into this folder instead of the cache")
    p.add_argument("--mirror", help="base URL serving the download sites' paths (default $DETZOO_ZOO_MIRROR)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    return {"list": _list, "show": _show, "download": _download}[args.zoo_command](args)


def _ap(value, entry) -> str:
    if value is None:
        return "-"
    # VOC mAP, AR@1000 (and other non-COCO-AP metrics) are marked so no one compares them
    return f"{value}*" if entry.get("metric") else f"{value}"


def _list(args) -> int:
    from detzoo.zoo.index import STATUSES, filter_entries, load_index

    entries = filter_entries(load_index(), method=args.method, min_ap=args.min_ap, status=args.status,
                             exact_status=args.exact, source=args.source)
    if args.json:
        print(json.dumps([e.as_dict() for e in entries], indent=1, ensure_ascii=False))
        return 0
    header = ("name", "method", "backbone", "schedule", "box AP", "mask AP", "status")
    rows = [(e.name, e.method, e.get("backbone", "-"), e.get("schedule", "-"),
             _ap(e.box_ap if e.box_ap is not None else e.get("ar_1000"), e), _ap(e.mask_ap, e), e.status)
            for e in entries]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    numeric = {4, 5}
    for line in [header, tuple("-" * w for w in widths)] + rows:
        cells = [c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths))]
        print("  ".join(cells).rstrip())
    counts = ", ".join(f"{sum(e.status == s for e in entries)} {s}" for s in STATUSES)
    print(f"{len(entries)} entries ({counts})")
    if any(e.get("metric") for e in entries):
        print("* not a COCO AP (VOC mAP, RPN AR@1000): `detzoo zoo show NAME` names the metric")
    return 0


def _show(args) -> int:
    from detzoo.zoo.hub import checkpoint_dir
    from detzoo.zoo.index import find_entries

    entries = find_entries(args.name)
    if args.json:
        print(json.dumps([e.as_dict() for e in entries], indent=1, ensure_ascii=False))
        return 0
    if args.name in (entries[0].get("aliases") or []):
        print(f"{args.name} is an alias of {entries[0].name}\n")
    elif entries[0].name != args.name:
        print(f"{args.name}: {len(entries)} {'entry uses' if len(entries) == 1 else 'entries use'} "
              f"{entries[0].checkpoint_file}\n")
    cache = checkpoint_dir()
    for n, entry in enumerate(entries):
        if n:
            print()
        fields = {}
        for key, value in entry.as_dict().items():
            fields[key] = value
            if key == "config":
                fields["config_path"] = str(entry.config_path) if entry.config_path else None
            if key == "checkpoint_file" and value:
                cached = cache / value
                fields["cached"] = str(cached) if cached.is_file() else f"no (would go to {cached})"
        width = max(len(k) for k in fields)
        for key, value in fields.items():
            if value is None:
                continue
            if isinstance(value, (dict, list)):
                value = json.dumps(value, ensure_ascii=False)
            print(f"{key.ljust(width)}  {value}")
    return 0


def _download(args) -> int:
    from detzoo.zoo.hub import fetch

    path = fetch(args.name, dest_dir=args.dir, progress=not args.no_progress and sys.stderr.isatty(),
                 mirror=args.mirror)
    print(path)
    return 0
