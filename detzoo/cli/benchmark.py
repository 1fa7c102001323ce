"""detzoo benchmark CONFIG [CHECKPOINT] [--num-images 2000] [--fuse-conv-bn] [--fast] [--json F]

Inference speed (images/s, ms/image) and peak memory with MMDetection's protocol: forward +
post-processing timed without data loading, one image at a time, the first 5 images not counted
(detzoo/tools/benchmark.py). Without a checkpoint the model keeps its random initial weights.
"""
from __future__ import annotations

import argparse
import json
import platform

from .common import add_config_arguments, load_cli_config, pick_device


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from detzoo.tools.benchmark import DEFAULT_LOG_INTERVAL, DEFAULT_NUM_IMAGES

    add_config_arguments(parser)
    parser.add_argument("checkpoint", nargs="?", help="model weights (.pth, or 'zoo'); "
                                                      "default: random weights")
    parser.add_argument("--num-images", type=int, default=DEFAULT_NUM_IMAGES,
                        help=f"images to run, the first 5 not counted (default {DEFAULT_NUM_IMAGES})")
    parser.add_argument("--log-interval", type=int, default=DEFAULT_LOG_INTERVAL,
                        help=f"print the running figures every N images (default {DEFAULT_LOG_INTERVAL})")
    parser.add_argument("--fuse-conv-bn", action="store_true",
                        help="fold BatchNorm layers into the convolutions before timing")
    parser.add_argument("--fast", action="store_true",
                        help="the inference fast path (detzoo.apis.fast_path: folded BN, "
                             "channels-last, autocast where it helps)")
    parser.add_argument("--image", help="time this image, repeated (default: the config's test set "
                                        "if its files exist, else a generated 640x480 image)")
    parser.add_argument("--source", choices=("auto", "test", "image", "generated"), default="auto",
                        help="where the images come from (default auto, see --image)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads before timing (CPU)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights (default 0)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to this JSON file")
    parser.add_argument("--unsafe-load", action="store_true",
                        help="allow legacy pickled checkpoints (runs code from the file: trusted files only)")


def run(args: argparse.Namespace) -> int:
    import torch

    from detzoo.apis.inference import init_detector
    from detzoo.models.layers.fuse_conv_bn import find_conv_bn_pairs, fuse_conv_bn
    from detzoo.tools.benchmark import apply_fast_path, benchmark_batches, time_inference
    from detzoo.utils.fileio import atomic_write_text

    cfg = load_cli_config(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = pick_device(args.device)
    model = init_detector(cfg, args.checkpoint, device=device, allow_pickle=args.unsafe_load)
    fused = 0
    if args.fuse_conv_bn:
        fused = len(find_conv_bn_pairs(model))
        model = fuse_conv_bn(model)
    context = None
    if args.fast:
        model, context = apply_fast_path(model)
    batches, source = benchmark_batches(model.cfg, model_device(model, device), image=args.image,
                                        source=args.source)
    weights = args.checkpoint or f"random (seed {args.seed})"
    print(f"benchmark {args.config}: weights {weights}, {source}, device {device}, "
          f"{torch.get_num_threads()} threads" + (f", {fused} BatchNorms folded" if args.fuse_conv_bn else "")
          + (", fast path" if args.fast else ""))
    kwargs = {"forward_context": context} if context is not None else {}
    figures = time_inference(model, batches, num_images=args.num_images, log_interval=args.log_interval,
                             device=torch.device(device), **kwargs)
    memory_what = "max_memory_allocated" if figures["memory_kind"].startswith("cuda") else "peak RSS"
    print(f"Overall: {figures['images_per_s']:.2f} img/s, {figures['ms_per_image']:.1f} ms/img over "
          f"{figures['timed_images']} images, memory {figures['peak_memory_mb']} MB ({memory_what})")
    if args.json:
        record = dict(config=args.config, checkpoint=args.checkpoint, device=str(device),
                      threads=torch.get_num_threads(), source=source, fuse_conv_bn=args.fuse_conv_bn,
                      fast=args.fast, num_images=args.num_images, warmup_images=5, **figures,
                      torch=torch.__version__, machine=platform.machine())
        atomic_write_text(args.json, json.dumps(record, indent=1) + "\n")
        print(f"figures written to {args.json}")
    return 0


def model_device(model, default):
    try:
        return next(model.parameters()).device
    except StopIteration:
        return default
