"""Faster R-CNN speed on this CPU as ratios to the same-run ResNet-50 trunk yardstick: plain fp32,
--fuse-conv-bn, the fast path (detzoo.apis.fast_path), ONNX Runtime (when detzoo.export and
onnxruntime are installed) and one training iteration, all in one run, plus how many of each
variant's detections match the fp32 ones (same label, IoU >= 0.9).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_speed.py [--reps 5] [--rounds 1]
        [--skip-train] [--skip-onnx] [--json]

Protocol (shared/spec/performance.md): random weights (seed 0) with score_thr 0, so ~100
detections are kept; end to end on shared/data/demo.jpg as ``inference_detector`` runs it
(decode, resize, normalise, forward, post-processing); median of ``--reps`` after 2 warm-ups; 2
threads. Timings are interleaved with the yardstick (trunk, variant, trunk, variant, ... trunk)
and each variant is divided by the mean of the two trunk timings around it, so machine load that
drifts over the run cancels out. The training iteration is ``model.loss`` forward + backward + SGD
step at batch 2, 1216x800, with the faster_rcnn_r50_fpn_1x config (frozen stem and stage 1,
frozen-statistics BN, SGD momentum 0.9, weight decay 1e-4) and a few random ground-truth boxes:
``train_iter_b2`` in this process (default allocator), ``train_trainer`` in a fresh process with
the trainer's host-allocator setting (detzoo/utils/memory.py), reported against this process's
trunk and against a trunk timed in that process.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch
from timing import repeat_times  # benchmarks/timing.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
THREADS = 2


def median_time(fn: Callable[[], object], reps: int, warmup: int = 2) -> float:
    return statistics.median(repeat_times(fn, reps, warmup))


def match_rate(reference, candidate, iou_thr: float = 0.9) -> float:
    """Share of ``reference``'s detections that ``candidate`` reproduces (same label, IoU >= thr),
    and vice versa; the smaller of the two. DetResults with boxes [N, 4] xyxy, labels [N]."""
    from detzoo.ops import box_iou

    if len(reference) == 0 or len(candidate) == 0:
        return float(len(reference) == len(candidate))
    same = (box_iou(reference.boxes.float(), candidate.boxes.float()) >= iou_thr) \
        & (reference.labels[:, None] == candidate.labels[None, :])
    return min(float(same.any(1).float().mean()), float(same.any(0).float().mean()))


def build_model(config: str):
    from detzoo.apis import init_detector

    torch.manual_seed(0)
    return init_detector(config, device="cpu", cfg_options={"model.test_cfg.rcnn.score_thr": 0.0})


def inference_variants(model, config: str, image: str, skip_onnx: bool, workdir: str) -> Dict[str, Callable]:
    """name -> callable(image) -> DetResult, for every variant that can run here."""
    from detzoo.apis import inference_detector
    from detzoo.apis.fast_path import optimize_for_inference
    from detzoo.models.layers.fuse_conv_bn import fuse_conv_bn

    fused = fuse_conv_bn(copy.deepcopy(model))
    fast = optimize_for_inference(copy.deepcopy(model))
    variants = {
        "fp32": lambda img: inference_detector(model, img),
        "fuse_conv_bn": lambda img: inference_detector(fused, img),
        "fast_path": lambda img: inference_detector(fast, img),
    }
    if not skip_onnx:
        runner = onnx_runner(model, config, workdir)
        if runner is not None:
            variants["onnxruntime"] = runner
    return variants


def onnx_runner(model, config: str, workdir: str) -> Optional[Callable]:
    try:
        from detzoo.export import export_onnx, import_onnxruntime, ort_runner

        import_onnxruntime()
    except Exception as err:  # not installed in this checkout: the row is left out
        print(f"(onnxruntime row skipped: {err})", file=sys.stderr)
        return None
    options = {"model.test_cfg.rcnn.score_thr": 0.0}
    path = str(Path(workdir) / "faster_rcnn.onnx")
    export_onnx(config, None, path, shape=(800, 1216), cfg_options=options, model=model)
    runner = ort_runner(path, threads=THREADS, config=config, cfg_options=options)
    # same weights as ``model``: the runner's own detzoo part is rebuilt from the config, so copy
    # the post-processing modules' weights over where it keeps a torch model
    inner = getattr(runner, "model", None)
    if isinstance(inner, torch.nn.Module):
        inner.load_state_dict(model.state_dict(), strict=False)
    return runner


def train_batch(model, batch_size: int = 2, height: int = 800, width: int = 1216, boxes_per_image: int = 8):
    """A collated training batch of random images with a few random ground-truth boxes."""
    import numpy as np

    g = torch.Generator().manual_seed(0)
    gt_bboxes, gt_labels, metas = [], [], []
    for i in range(batch_size):
        xy = torch.rand(boxes_per_image, 2, generator=g) * torch.tensor([width * 0.7, height * 0.7])
        wh = 32 + torch.rand(boxes_per_image, 2, generator=g) * torch.tensor([width * 0.3, height * 0.3])
        gt_bboxes.append(torch.cat([xy, xy + wh], dim=1))
        gt_labels.append(torch.randint(0, 80, (boxes_per_image,), generator=g))
        metas.append(dict(filename=f"random{i}.jpg", img_id=i, ori_shape=(height, width, 3),
                          img_shape=(height, width, 3), pad_shape=(height, width, 3),
                          scale_factor=np.ones(4, dtype=np.float32), flip=False, flip_direction=None))
    img = torch.randn(batch_size, 3, height, width, generator=g)
    return {"img": img, "img_metas": metas, "gt_bboxes": gt_bboxes, "gt_labels": gt_labels,
            "gt_bboxes_ignore": [torch.zeros(0, 4) for _ in range(batch_size)]}


def train_step_fn(config: str) -> Callable[[], None]:
    """One ``model.loss`` forward + backward + SGD step of the config's model and optimizer."""
    from detzoo.config import load_config
    from detzoo.models.builder import build_detector

    cfg = load_config(config)
    torch.manual_seed(0)
    model = build_detector(cfg["model"]).train()
    opt_cfg = dict(cfg["optimizer"])
    opt_type = opt_cfg.pop("type")
    # the first iterations of the 1x schedule (linear warm-up from 0.001 x lr): keeps random
    # weights finite over the timed iterations
    opt_cfg["lr"] = opt_cfg["lr"] * cfg["lr_config"].get("warmup_ratio", 1.0)
    optimizer = opt_type([p for p in model.parameters() if p.requires_grad], **opt_cfg)
    batch = train_batch(model)

    def step():
        optimizer.zero_grad(set_to_none=True)
        losses = model.loss(batch)
        total = sum(v for k, v in losses.items() if "loss" in k)
        total.backward()
        optimizer.step()

    return step


def trainer_step_in_child(config: str, reps: int) -> dict:
    """The training iteration as ``detzoo train`` runs it: in a fresh process with the trainer's
    host-allocator setting (detzoo.utils.memory.keep_freed_memory), timed with the trunk of that
    same process before and after (the allocator setting speeds the trunk up too)."""
    out = subprocess.run([sys.executable, __file__, "--_train-child", config, str(reps)], check=True,
                         capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS=str(THREADS)))
    return json.loads(out.stdout.strip().splitlines()[-1])


def _train_child(config: str, reps: int) -> None:
    from detzoo.utils.memory import keep_freed_memory

    sys.path.insert(0, str(SHARED / "bench"))
    import yardstick

    torch.set_num_threads(THREADS)
    applied = keep_freed_memory()
    step = train_step_fn(config)
    trunk_before = yardstick.time_trunk(threads=THREADS)
    seconds = median_time(step, reps, warmup=1)
    trunk_after = yardstick.time_trunk(threads=THREADS)
    print(json.dumps({"seconds": seconds, "trunk_s": (trunk_before + trunk_after) / 2, "applied": applied}))


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--_train-child":
        _train_child(sys.argv[2], int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="faster_rcnn_r50_fpn_1x_coco")
    parser.add_argument("--image", default=str(SHARED / "data" / "demo.jpg"))
    parser.add_argument("--reps", type=int, default=5, help="timed runs per variant (median)")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the whole interleaved sequence")
    parser.add_argument("--train-reps", type=int, default=3)
    parser.add_argument("--only", nargs="+", help="variants to time (fp32 is always run for the match rate)")
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--skip-onnx", action="store_true")
    parser.add_argument("--json", action="store_true", help="print one JSON object per row")
    args = parser.parse_args()

    sys.path.insert(0, str(SHARED / "bench"))
    import yardstick  # the shared same-run yardstick; never copied into the package

    torch.set_num_threads(THREADS)
    model = build_model(args.config)
    rows: List[dict] = []
    with tempfile.TemporaryDirectory() as workdir, torch.inference_mode(False):
        variants = inference_variants(model, args.config, args.image, args.skip_onnx, workdir)
        if args.only:
            variants = {k: v for k, v in variants.items() if k in args.only or k == "fp32"}
        reference = variants["fp32"](args.image)
        matches = {name: match_rate(reference, fn(args.image)) for name, fn in variants.items()}
        jobs = [(name, lambda fn=fn: fn(args.image), args.reps) for name, fn in variants.items()]
        if not args.skip_train:
            jobs.append(("train_iter_b2", train_step_fn(args.config), args.train_reps))
        for round_index in range(args.rounds):
            trunk_before = yardstick.time_trunk(threads=THREADS)
            for name, fn, reps in jobs:
                seconds = median_time(fn, reps, warmup=2 if name != "train_iter_b2" else 1)
                trunk_after = yardstick.time_trunk(threads=THREADS)
                trunk = (trunk_before + trunk_after) / 2
                rows.append({"round": round_index, "variant": name, "seconds": round(seconds, 3),
                             "trunk_s": round(trunk, 3), "ratio": round(seconds / trunk, 2),
                             "match": None if name not in matches else round(matches[name], 3)})
                trunk_before = trunk_after
                row = rows[-1]
                if args.json:
                    print(json.dumps(row), flush=True)
                else:
                    match = "" if row["match"] is None else f"  match {row['match']:.3f}"
                    print(f"[{round_index}] {name:>14}: {row['seconds']:7.3f} s  trunk {row['trunk_s']:.3f} s"
                          f"  ratio {row['ratio']:.2f}{match}", flush=True)
            if not args.skip_train:
                child = trainer_step_in_child(args.config, args.train_reps)
                trunk_after = yardstick.time_trunk(threads=THREADS)
                trunk = (trunk_before + trunk_after) / 2
                trunk_before = trunk_after
                row = {"round": round_index, "variant": "train_trainer", "seconds": round(child["seconds"], 3),
                       "trunk_s": round(trunk, 3), "ratio": round(child["seconds"] / trunk, 2), "match": None,
                       "child_trunk_s": round(child["trunk_s"], 3),
                       "ratio_child_trunk": round(child["seconds"] / child["trunk_s"], 2)}
                rows.append(row)
                if args.json:
                    print(json.dumps(row), flush=True)
                else:
                    print(f"[{round_index}] {'train_trainer':>14}: {row['seconds']:7.3f} s  trunk {row['trunk_s']:.3f} s"
                          f"  ratio {row['ratio']:.2f}  (its own process's trunk {row['child_trunk_s']:.3f} s:"
                          f" ratio {row['ratio_child_trunk']:.2f})", flush=True)
    if args.rounds > 1 and not args.json:
        print("median ratio over rounds:")
        for name in dict.fromkeys(r["variant"] for r in rows):
            print(f"  {name:>14}: {statistics.median(r['ratio'] for r in rows if r['variant'] == name):.2f}")


if __name__ == "__main__":
    main()
