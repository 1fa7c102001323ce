"""Time ONNX Runtime against PyTorch end to end on one image, as yardstick ratios.

    python -m detzoo.export.timing faster_rcnn_r50_fpn_1x_coco frcnn.onnx ../shared/data/demo.jpg

The model must have been exported with ``none`` (random weights, seed 0) or the checkpoint given
with ``--checkpoint``, so that both backends compute the same detections (checked). Each round
times the yardstick trunk, PyTorch and ONNX Runtime once, interleaved, so that load from other
processes hits all three alike; the ratios use the fastest round of each (the least disturbed).
"""
from __future__ import annotations

import argparse
import json
import time
from typing import Callable, Dict, Optional


def _once(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def time_backends(config: str, onnx_path: str, image: str, checkpoint: Optional[str] = None, threads: int = 2,
                  rounds: int = 5, trunk: Optional[Callable[[], float]] = None,
                  cfg_options: Optional[dict] = None) -> Dict[str, float]:
    """Seconds per image (fastest of ``rounds``) for PyTorch fp32 and ONNX Runtime, both with
    ``threads`` threads, pre- and post-processing included; ``trunk`` returns the yardstick's
    seconds (``yardstick.time_trunk``), else the trunk is not timed. Also the detections'
    largest box / score differences between the backends. ``cfg_options``: config overrides for
    both (e.g. a score threshold of 0, so that random weights keep detections to compare)."""
    import torch

    from detzoo.apis.inference import inference_detector, init_detector
    from .runtime import OrtDetector

    torch.set_num_threads(threads)
    if checkpoint is None:
        torch.manual_seed(0)  # the weights `detzoo export CONFIG none` draws
    model = init_detector(config, checkpoint, cfg_options=cfg_options)
    ort = OrtDetector(onnx_path, config, cfg_options=cfg_options, threads=threads)
    ref, got = inference_detector(model, image), ort(image)
    out: Dict[str, float] = {"detections": len(ref), "detections_ort": len(got)}
    if len(ref) == len(got) and len(ref):
        out["max_box_diff"] = float((ref.boxes - got.boxes).abs().max())
        out["max_score_diff"] = float((ref.scores - got.scores).abs().max())
    runs = {"pytorch": lambda: inference_detector(model, image), "onnxruntime": lambda: ort(image)}
    for fn in runs.values():  # warm-up
        fn()
    times = {name: [] for name in runs}
    trunk_times = []
    for _ in range(rounds):
        if trunk is not None:
            trunk_times.append(trunk())
            torch.set_num_threads(threads)
        for name, fn in runs.items():
            times[name].append(_once(fn))
    for name, values in times.items():
        out[f"{name}_s"] = min(values)
        if trunk_times:
            out[f"{name}_ratio"] = min(values) / min(trunk_times)
    if trunk_times:
        out["trunk_s"] = min(trunk_times)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config")
    parser.add_argument("onnx")
    parser.add_argument("image")
    parser.add_argument("--checkpoint", help="the weights the .onnx was exported from (default: random, seed 0)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cfg-options", nargs="+", metavar="KEY=VALUE", default=[],
                        help="config overrides for both backends, e.g. model.test_cfg.rcnn.score_thr=0")
    parser.add_argument("--yardstick", default="../shared/bench/yardstick.py",
                        help="yardstick.py whose time_trunk() gives the unit ('' to skip)")
    args = parser.parse_args(argv)
    trunk = None
    if args.yardstick:
        import importlib.util

        spec = importlib.util.spec_from_file_location("yardstick", args.yardstick)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        trunk = lambda: module.time_trunk(threads=args.threads)  # noqa: E731
    from detzoo.config import parse_cli_options

    options = parse_cli_options(args.cfg_options) if args.cfg_options else None
    print(json.dumps(time_backends(args.config, args.onnx, args.image, args.checkpoint, args.threads, args.rounds,
                                   trunk, options), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
