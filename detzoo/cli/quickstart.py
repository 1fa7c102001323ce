"""detzoo quickstart: generate the shapes dataset, train the quickstart detector, evaluate, draw.

Everything lands in the work dir: data/ (the dataset), the training logs and checkpoints,
metrics.json and vis/ (predictions drawn on validation images).
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import time

DEFAULT_CONFIG = "faster_rcnn_r18_fpn_quickstart"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="config path or zoo name")
    parser.add_argument("--work-dir", default=None,
                        help="output folder (default runs/quickstart, or runs/<config name> for another config)")
    parser.add_argument("--num-train", type=int, default=1200, help="generated training images")
    parser.add_argument("--num-val", type=int, default=100, help="generated validation images")
    parser.add_argument("--epochs", type=int, default=None, help="override the config's epochs (shorter demo)")
    parser.add_argument("--num-vis", type=int, default=12, help="validation images to draw")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", help="cpu, cuda, ... (default: cuda if available)")
    parser.add_argument("--cfg-options", nargs="+", metavar="KEY=VALUE", default=[],
                        help="further config overrides")


def run(args: argparse.Namespace) -> int:
    from detzoo.apis.test import evaluate_detector, run_test
    from detzoo.apis.train import train_from_config
    from detzoo.config import instantiate, load_config, parse_cli_options
    from detzoo.data import VOCDataset, make_shapes_dataset
    from detzoo.engine.checkpoint import load_model_weights
    from detzoo.evaluation import format_metrics_line
    from detzoo.utils.fileio import atomic_write_text
    from detzoo.models.builder import build_detector

    from .common import pick_device

    start = time.perf_counter()
    if args.work_dir is None:
        stem = osp.splitext(osp.basename(args.config))[0]
        args.work_dir = "runs/quickstart" if stem == DEFAULT_CONFIG else osp.join("runs", stem)
    data_dir = osp.join(args.work_dir, "data")
    print(f"[1/4] generating {args.num_train}+{args.num_val} images into {data_dir}")
    cfg = load_config(args.config)
    voc = cfg["data"]["train"]["type"] is VOCDataset  # VOC configs train from a VOC-layout copy
    ds = make_shapes_dataset(data_dir, num_train=args.num_train, num_val=args.num_val, seed=args.seed, voc=voc)
    if voc:
        overrides = {"data.train.ann_file": ds["voc_train_ann"], "data.val.ann_file": ds["voc_val_ann"],
                     "data.test.ann_file": ds["voc_val_ann"]}
        for split in ("train", "val", "test"):
            overrides[f"data.{split}.img_prefix"] = ds["voc_img_prefix"]
    else:
        overrides = {"data.train.ann_file": ds["train_ann"], "data.val.ann_file": ds["val_ann"],
                     "data.test.ann_file": ds["val_ann"]}
        for split in ("train", "val", "test"):
            overrides[f"data.{split}.img_prefix"] = ds["img_dir"] + os.sep
    if args.epochs is not None:
        overrides["runner.max_epochs"] = args.epochs
        overrides["evaluation.interval"] = args.epochs
    cfg.merge_from_dotted(overrides)
    if args.cfg_options:
        cfg.merge_from_dotted(parse_cli_options(args.cfg_options))

    device = pick_device(args.device)
    print(f"[2/4] training {osp.basename(cfg.filename)} for {cfg['runner']['max_epochs']} epochs on {device}")
    result = train_from_config(cfg, args.work_dir, validate=False, seed=args.seed, device=device)

    print("[3/4] evaluating on the validation split")
    test_cfg = dict(cfg["data"]["test"])
    test_cfg["test_mode"] = True
    dataset = instantiate(test_cfg)
    model = build_detector(cfg["model"], class_names=dataset.CLASSES)
    load_model_weights(model, result["last_checkpoint"])
    model.to(device).eval()
    results = run_test(model, dataset)
    metric = cfg.get("evaluation", {}).get("metric", "bbox")
    metrics = evaluate_detector(model, dataset, metric, results=results,
                                out_file=osp.join(args.work_dir, "results.json"))
    metrics["wall_time_s"] = round(time.perf_counter() - start, 1)
    atomic_write_text(osp.join(args.work_dir, "metrics.json"), json.dumps(metrics, indent=1))

    vis_dir = osp.join(args.work_dir, "vis")
    print(f"[4/4] drawing {args.num_vis} validation images into {vis_dir}")
    subset = _Subset(dataset, range(min(args.num_vis, len(dataset))))
    run_test(model, subset, show_dir=vis_dir, show_score_thr=0.5, progress=False)
    for name in ([metric] if isinstance(metric, str) else metric):
        if name == "mAP":  # VOC: mAP and AP50
            print(format_metrics_line({k: v for k, v in metrics.items() if k in ("mAP", "AP50")}))
            continue
        print(format_metrics_line({k: v for k, v in metrics.items() if k.startswith(f"{name}_mAP")
                                   and not k.endswith("_copypaste")}))
    print(f"quickstart done in {metrics['wall_time_s']:.0f} s: checkpoint {result['last_checkpoint']}, "
          f"metrics {osp.join(args.work_dir, 'metrics.json')}, detections {osp.join(args.work_dir, 'results.json')}, "
          f"pictures {vis_dir}")
    return 0


class _Subset:
    """The first images of a dataset, for drawing a few predictions."""

    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, list(indices)
        self.flag = dataset.flag[self.indices] if hasattr(dataset, "flag") else None

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        return self.dataset[self.indices[i]]
