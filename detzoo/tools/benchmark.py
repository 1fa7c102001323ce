"""Inference speed and memory of a detector, with MMDetection's benchmark protocol.

Protocol (MMDetection ``tools/analysis_tools/benchmark.py``, recorded in the model-zoo notes):
one image per forward pass; the clock covers ``model.predict(..., rescale=True)`` (network
forward + post-processing) and nothing else -- images are decoded, resized and normalised before
the clock starts; the first ``warmup`` (5) images are not counted; a line is printed every
``log_interval`` (50) images; the figure is the mean over the counted images. On a GPU the clock
waits for the device (``torch.cuda.synchronize``) before it is read.

Memory: ``torch.cuda.max_memory_allocated`` (reset before the run) on a GPU; on a CPU the peak
resident set size of the whole process (``resource.getrusage``), which also counts building the
model and loading data, as an upper bound.
"""
from __future__ import annotations

import contextlib
import itertools
import time
from typing import Callable, Dict, Iterable, Iterator, Optional

import torch

from detzoo.errors import ConfigError, DetzooError

__all__ = ["time_inference", "benchmark_batches", "apply_fast_path", "DEFAULT_NUM_IMAGES"]

DEFAULT_NUM_IMAGES = 2000
DEFAULT_WARMUP = 5
DEFAULT_LOG_INTERVAL = 50


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_inference(model, batches: Iterable[dict], num_images: int = DEFAULT_NUM_IMAGES,
                   warmup: int = DEFAULT_WARMUP, log_interval: int = DEFAULT_LOG_INTERVAL,
                   device: Optional[torch.device] = None,
                   forward_context: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
                   log: Callable[[str], None] = print) -> Dict[str, float]:
    """Time ``model.predict`` over ``num_images`` one-image batches; returns the figures.

    ``batches`` yields collated one-image batches (``img`` already on ``device``, ``img_metas``);
    fetching the next one is outside the clock. ``forward_context()`` wraps each timed call (the
    fast path's autocast). Returns ``images_per_s``, ``ms_per_image``, ``timed_images``,
    ``timed_seconds``, ``peak_memory_mb``, ``memory_kind``.
    """
    if num_images <= warmup:
        raise ConfigError(f"--num-images {num_images} must be larger than the {warmup} warm-up images "
                          "that are not counted")
    if log_interval < 1:
        raise ConfigError(f"--log-interval {log_interval} must be at least 1")
    device = torch.device(device) if device is not None else _model_device(model)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    timed = 0.0
    done = 0
    with torch.inference_mode():
        for i, batch in enumerate(itertools.islice(batches, num_images)):
            extra = {"proposals": batch["proposals"]} if "proposals" in batch else {}
            _sync(device)
            start = time.perf_counter()
            with forward_context():
                model.predict(batch["img"], batch["img_metas"], rescale=True, **extra)
            _sync(device)
            elapsed = time.perf_counter() - start
            done = i + 1
            if i < warmup:
                continue
            timed += elapsed
            counted = done - warmup
            if done % log_interval == 0:
                rate = counted / timed
                eta = (num_images - done) / rate
                log(f"[{done:>{len(str(num_images))}}/{num_images}] {rate:.2f} img/s, "
                    f"{1000.0 / rate:.1f} ms/img, eta {_hms(eta)}")
    if done < num_images:
        raise DetzooError(f"only {done} images could be fetched, {num_images} were asked for")
    counted = done - warmup
    from detzoo.engine.logging import peak_memory_mb

    return {"images_per_s": counted / timed, "ms_per_image": 1000.0 * timed / counted,
            "timed_images": counted, "timed_seconds": timed,
            "peak_memory_mb": peak_memory_mb(device),
            "memory_kind": "cuda_max_memory_allocated" if device.type == "cuda" else "cpu_peak_rss"}


def _hms(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _model_device(model) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def benchmark_batches(cfg, device, image: Optional[str] = None, source: str = "auto",
                      log: Callable[[str], None] = print) -> tuple[Iterator[dict], str]:
    """Endless one-image batches for :func:`time_inference` and a description of their source.

    ``source``: ``"image"`` (``image`` prepared once and repeated), ``"test"`` (the config's
    ``data.test`` set through its pipeline, cycled), ``"generated"`` (a fixed 640x480 random
    image prepared once and repeated) or ``"auto"``: ``image`` if given, else the test set if
    its annotation file exists, else generated.
    """
    import os.path as osp

    import numpy as np

    from detzoo.apis.inference import prepare_images

    if source == "auto":
        test_cfg = (cfg.get("data") or {}).get("test") or {}
        ann_file = test_cfg.get("ann_file")
        source = "image" if image else ("test" if ann_file and osp.isfile(str(ann_file)) else "generated")
        if source == "generated":
            log(f"no test set at {ann_file!r} and no --image: timing a generated 640x480 image")
    if source == "image":
        if not image or not osp.isfile(image):
            raise ConfigError(f"--image {image!r} is not a file")
        batch = prepare_images(cfg, [image], device)
        return itertools.repeat(batch), f"image {image} (repeated)"
    if source == "generated":
        rng = np.random.default_rng(0)
        img = rng.integers(0, 256, size=(480, 640, 3), dtype=np.uint8)
        batch = prepare_images(cfg, [img], device)
        return itertools.repeat(batch), "generated 640x480 image (repeated)"
    if source == "test":
        return _test_set_batches(cfg, device), f"test set {cfg['data']['test'].get('ann_file')}"
    raise ConfigError(f"--source {source!r} must be auto, image, test or generated")


def _test_set_batches(cfg, device) -> Iterator[dict]:
    from detzoo.config import instantiate
    from detzoo.data import build_dataloader

    test_cfg = dict(cfg["data"]["test"])
    test_cfg["test_mode"] = True
    dataset = instantiate(test_cfg)
    if len(dataset) == 0:
        raise ConfigError(f"the test set {test_cfg.get('ann_file')} has no images")
    while True:  # cycle: a small test set is repeated up to --num-images
        loader = build_dataloader(dataset, 1, 0, shuffle=False, dist=False)
        for batch in loader:
            batch["img"] = batch["img"].to(device)
            if "proposals" in batch:
                batch["proposals"] = [p.to(device) for p in batch["proposals"]]
            yield batch


def apply_fast_path(model):
    """``(model, forward_context)`` of the fast path (detzoo.apis.fast_path)."""
    try:
        from detzoo.apis.fast_path import inference_autocast, optimize_for_inference
    except ImportError as err:
        raise DetzooError(f"--fast needs detzoo.apis.fast_path, which is not available in this "
                          f"installation ({err})") from None
    model = optimize_for_inference(model)
    return model, (lambda: inference_autocast(model))
