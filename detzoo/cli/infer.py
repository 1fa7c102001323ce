"""detzoo infer CONFIG CHECKPOINT IMAGE [IMAGE|FOLDER ...] --out-dir vis/"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp

from .common import add_config_arguments, load_cli_config, pick_device

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("checkpoint", help="model weights (.pth)")
    parser.add_argument("inputs", nargs="+", help="images and/or folders of images")
    parser.add_argument("--out-dir", "--show-dir", dest="out_dir", default="vis",
                        help="where drawn images and detections.json go (--show-dir: the same, as in `detzoo test`)")
    parser.add_argument("--score-thr", type=float, default=0.3, help="draw detections above this score")
    parser.add_argument("--device", help="cpu, cuda, ... (default: cuda if available)")
    parser.add_argument("--unsafe-load", action="store_true",
                        help="allow legacy pickled checkpoints (runs code from the file: trusted files only)")
    parser.add_argument("--backend", choices=("pytorch", "onnxruntime"), default="pytorch",
                        help="onnxruntime: CHECKPOINT is a .onnx from `detzoo export` (see docs/export.md)")
    parser.add_argument("--fast", action="store_true",
                        help="the inference fast path: BatchNorm folded, channels-last, bf16 where the "
                             "device has it (detzoo.apis.fast_path, docs/performance.md)")


def collect_images(inputs):
    from detzoo.errors import DataError

    paths = []
    for item in inputs:
        if osp.isdir(item):
            found = sorted(osp.join(item, f) for f in os.listdir(item) if f.lower().endswith(IMAGE_SUFFIXES))
            if not found:
                raise DataError(f"folder {item} contains no images ({', '.join(IMAGE_SUFFIXES)})")
            paths.extend(found)
        elif osp.isfile(item):
            paths.append(item)
        else:
            raise DataError(f"input {item} does not exist")
    return paths


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from detzoo.apis.inference import inference_detector, init_detector
    from detzoo.data.transforms import decode_image
    from detzoo.evaluation.results_io import encode_masks
    from detzoo.utils.fileio import atomic_write_text
    from detzoo.visualization import draw_detections, imwrite_atomic

    cfg = load_cli_config(args)
    if args.backend == "onnxruntime":  # the dense graphs in ONNX Runtime, detzoo's post-processing
        from detzoo.errors import ConfigError
        from detzoo.export import OrtDetector

        if args.fast:
            raise ConfigError("--fast is the PyTorch fast path; it does not apply to --backend onnxruntime")
        model = OrtDetector(args.checkpoint, cfg)
    else:
        model = init_detector(cfg, args.checkpoint, device=pick_device(args.device), allow_pickle=args.unsafe_load)
        if args.fast:  # inference_detector enters the fast path's autocast itself
            from detzoo.apis.fast_path import optimize_for_inference

            model = optimize_for_inference(model)
    paths = collect_images(args.inputs)
    os.makedirs(args.out_dir, exist_ok=True)
    summary = []
    for path in tqdm(paths, desc="infer", unit="img", disable=len(paths) < 2):
        det = inference_detector(model, path)
        img = decode_image(path)
        out_path = osp.join(args.out_dir, osp.basename(path))
        imwrite_atomic(out_path, draw_detections(img, det, model.class_names, score_thr=args.score_thr))
        kept = det[det.scores >= args.score_thr]
        entries = [{"bbox": [round(v, 2) for v in box], "score": round(score, 4), "label": model.class_names[label]}
                   for box, score, label in zip(kept.boxes.tolist(), kept.scores.tolist(), kept.labels.tolist())]
        if kept.masks is not None:  # COCO RLE, as in results files
            for entry, rle in zip(entries, encode_masks(kept.masks)):
                entry["segmentation"] = rle
        summary.append({"image": path, "detections": entries})
        keep = kept.scores
        print(f"{path}: {len(keep)} detections >= {args.score_thr} -> {out_path}")
    atomic_write_text(osp.join(args.out_dir, "detections.json"), json.dumps(summary, indent=1))
    return 0
