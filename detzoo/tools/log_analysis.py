"""Training time and curves from ``<timestamp>.log.json`` files (detzoo/engine/logging.py format).

A log is one JSON object per line: a header (``env_info``, ``config``, ``seed``, ``exp_name``),
then ``mode="train"`` lines (``epoch`` 1-based, ``iter`` 1-based within the epoch: the last
iteration of the logged interval; ``time`` and the losses are averages over the interval;
optionally ``imgs_per_s``) and ``mode="val"`` lines (the metrics, e.g. ``bbox_mAP``).

Definitions (MMDetection ``tools/analysis_tools/analyze_logs.py`` and the model-zoo notes):

* per-epoch average iteration time: the mean ``time`` of the epoch's train lines, without the
  first line of each epoch (its interval includes start-up: loader workers, caches) unless
  ``include_outliers``; slowest/fastest epoch and the std over epochs come from these means.
* throughput: images/s averaged over global iterations ``window`` (default 100-500, "to skip
  warm-up"): the iterations ``start < g <= end``, each taking its interval's mean ``time``;
  images/s = images in the window / seconds in the window.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from detzoo.errors import ConfigError, DataError

__all__ = ["TrainLog", "load_log", "cal_train_time", "format_train_time", "plot_curve"]


@dataclass
class TrainLog:
    """A parsed log: ``train``/``val`` line dicts in file order, with ``global_iter`` added to
    each train line (1-based over the whole run) and ``covered`` (iterations its interval spans)."""

    path: str
    header: Optional[dict] = None
    train: List[dict] = field(default_factory=list)
    val: List[dict] = field(default_factory=list)
    epoch_len: Dict[int, int] = field(default_factory=dict)
    epoch_len_source: str = "estimated"


def load_log(path: str) -> TrainLog:
    """Read and check a ``.log.json`` file; a malformed line is a DataError naming file and line."""
    if not os.path.isfile(path):
        raise DataError(f"log {path}: no such file")
    log = TrainLog(path=path)
    with open(path, encoding="utf-8") as f:
        for number, text in enumerate(f, start=1):
            text = text.strip()
            if not text:
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as err:
                raise DataError(f"log {path}, line {number}: not valid JSON ({err.msg} at column "
                                f"{err.colno}); expected one JSON object per line") from None
            if not isinstance(record, dict):
                raise DataError(f"log {path}, line {number}: expected a JSON object, got "
                                f"{type(record).__name__}")
            mode = record.get("mode")
            if mode is None:
                if log.header is None and not log.train and not log.val:
                    log.header = record
                continue
            if mode not in ("train", "val"):
                raise DataError(f"log {path}, line {number}: mode {mode!r} is neither 'train' nor 'val'")
            for key in ("epoch", "iter"):
                if not isinstance(record.get(key), int) or record[key] < 1:
                    raise DataError(f"log {path}, line {number}: '{key}' must be a positive integer, "
                                    f"got {record.get(key)!r}")
            if mode == "train" and "time" in record and not _is_number(record["time"]):
                raise DataError(f"log {path}, line {number}: 'time' must be a number, got {record['time']!r}")
            record["_line"] = number
            (log.train if mode == "train" else log.val).append(record)
    if log.header is None and not log.train and not log.val:
        raise DataError(f"log {path}: empty (no JSON lines); is it a detzoo/MMDetection .log.json file?")
    _number_iterations(log)
    return log


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _epoch_lengths_from_text(path: str) -> Dict[int, int]:
    """``Epoch [e][i/len]`` of the text log beside the JSON one (``x.log`` for ``x.log.json``)."""
    text_path = path[:-len(".json")] if path.endswith(".log.json") else None
    lengths: Dict[int, int] = {}
    if text_path and os.path.isfile(text_path):
        pattern = re.compile(r"Epoch \[(\d+)\]\[\d+/(\d+)\]")
        with open(text_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                match = pattern.search(line)
                if match:
                    lengths[int(match.group(1))] = int(match.group(2))
    return lengths


def _number_iterations(log: TrainLog) -> None:
    lengths = _epoch_lengths_from_text(log.path)
    if lengths:
        log.epoch_len_source = "text log"
    for record in log.train:  # fall back: the last logged iteration of the epoch
        if record["epoch"] not in lengths:
            log.epoch_len[record["epoch"]] = max(log.epoch_len.get(record["epoch"], 0), record["iter"])
    log.epoch_len.update(lengths)
    epochs = sorted(log.epoch_len)
    offsets, running = {}, 0
    if epochs:  # a resumed run's log starts at a later epoch: earlier epochs had the same length
        running = (epochs[0] - 1) * log.epoch_len[epochs[0]]
    for epoch in epochs:
        offsets[epoch] = running
        running += log.epoch_len[epoch]
    previous: Dict[int, int] = {}
    for record in log.train:
        epoch, inner = record["epoch"], record["iter"]
        record["global_iter"] = offsets[epoch] + inner
        record["covered"] = max(inner - previous.get(epoch, 0), 0)
        previous[epoch] = inner


def batch_size_from_header(header: Optional[dict]) -> Optional[int]:
    """Images per iteration over all processes: ``samples_per_gpu`` (the train loader's override
    first) of the config text in the header, times the ``world size`` of its ``env_info``."""
    if not header or not isinstance(header.get("config"), str):
        return None
    text = header["config"]
    per_gpu = None
    loader = re.search(r"train_dataloader\s*=\s*dict\((?:[^()]|\([^()]*\))*?samples_per_gpu\s*=\s*(\d+)", text)
    if loader:
        per_gpu = int(loader.group(1))
    else:
        data = re.search(r"^data\s*=\s*dict\(\s*samples_per_gpu\s*=\s*(\d+)", text, re.M) \
            or re.search(r"samples_per_gpu\s*=\s*(\d+)", text)
        per_gpu = int(data.group(1)) if data else None
    if per_gpu is None:
        return None
    world = re.search(r"world size (\d+)", str(header.get("env_info", "")))
    return per_gpu * (int(world.group(1)) if world else 1)


def cal_train_time(log: TrainLog, window: Tuple[int, int] = (100, 500), include_outliers: bool = False,
                   batch_size: Optional[int] = None) -> dict:
    """Training-time figures of one log (definitions in the module docstring).

    Returns ``epochs`` ({epoch: mean s/iter}), ``slowest_epoch``/``fastest_epoch`` (epoch,
    s/iter), ``epoch_std``, ``average_iter_time`` (over all counted lines), ``window``,
    ``window_iters``, ``window_iter_time``, ``window_images_per_s`` (None when the batch size is
    unknown), ``images_per_s_source``.
    """
    timed = [r for r in log.train if "time" in r]
    if not timed:
        raise DataError(f"log {log.path}: no training line with a 'time' entry")
    start, end = window
    if not (0 <= start < end):
        raise ConfigError(f"--window {start} {end}: give START END with 0 <= START < END")
    per_epoch: Dict[int, List[float]] = {}
    for record in timed:
        per_epoch.setdefault(record["epoch"], []).append(float(record["time"]))
    counted = {e: (t if include_outliers or len(t) == 1 else t[1:]) for e, t in per_epoch.items()}
    means = {e: sum(t) / len(t) for e, t in sorted(counted.items())}
    all_times = [v for t in counted.values() for v in t]
    slowest = max(means, key=means.get)
    fastest = min(means, key=means.get)
    mean_of_means = sum(means.values()) / len(means)
    std = math.sqrt(sum((m - mean_of_means) ** 2 for m in means.values()) / len(means))

    iters = seconds = images = 0.0
    from_log = all("imgs_per_s" in r for r in timed)
    for record in timed:
        g, span = record["global_iter"], record["covered"]
        inside = min(g, end) - max(g - span, start)
        if inside <= 0:
            continue
        iters += inside
        seconds += inside * float(record["time"])
        if from_log:
            images += inside * float(record["time"]) * float(record["imgs_per_s"])
    if iters == 0:
        first, last = timed[0]["global_iter"], timed[-1]["global_iter"]
        raise DataError(f"log {log.path}: no logged iteration inside the window {start}-{end} (the log "
                        f"covers global iterations {first - timed[0]['covered'] + 1}-{last}); "
                        f"choose one with --window START END")
    if from_log and batch_size is None:
        ips, source = images / seconds, "imgs_per_s entries of the log"
    else:
        batch = batch_size or batch_size_from_header(log.header)
        ips = batch * iters / seconds if batch else None
        source = (f"--batch-size {batch}" if batch_size else f"batch size {batch} from the log's config"
                  if batch else "unknown: give --batch-size")
    return dict(epochs=means, slowest_epoch=(slowest, means[slowest]), fastest_epoch=(fastest, means[fastest]),
                epoch_std=std, average_iter_time=sum(all_times) / len(all_times), window=(start, end),
                window_iters=int(iters), window_iter_time=seconds / iters, window_images_per_s=ips,
                images_per_s_source=source, epoch_len_source=log.epoch_len_source)


def format_train_time(path: str, figures: dict) -> str:
    start, end = figures["window"]
    slow, fast = figures["slowest_epoch"], figures["fastest_epoch"]
    lines = [f"-----Analyze train time of {path}-----",
             f"slowest epoch {slow[0]}, average time is {slow[1]:.4f} s/iter",
             f"fastest epoch {fast[0]}, average time is {fast[1]:.4f} s/iter",
             f"time std over epochs is {figures['epoch_std']:.4f}",
             f"average iter time: {figures['average_iter_time']:.4f} s/iter",
             f"{figures['window_iters']} logged iterations in {start + 1}-{end}: "
             f"{figures['window_iter_time']:.4f} s/iter"
             + (f", {figures['window_images_per_s']:.2f} images/s ({figures['images_per_s_source']})"
                if figures["window_images_per_s"] is not None else
                ", images/s unknown (no imgs_per_s in the log and no batch size: give --batch-size)")]
    return "\n".join(lines)


def curve_series(log: TrainLog, key: str) -> Tuple[str, List[float], List[float]]:
    """``(x_label, xs, ys)`` of ``key``: train keys against the global iteration, val keys (e.g.
    ``bbox_mAP``) against the epoch."""
    train = [(r["global_iter"], r[key]) for r in log.train if key in r]
    val = [(r["epoch"], r[key]) for r in log.val if key in r]
    pairs, label = (train, "iteration") if train else (val, "epoch")
    if not pairs:
        available = sorted({k for r in log.train + log.val for k in r
                            if _is_number(r[k]) and not k.startswith("_")} - {"epoch", "iter", "global_iter",
                                                                                "covered"})
        raise DataError(f"log {log.path}: no key {key!r} in any train or val line; available: "
                        f"{', '.join(available) or 'none'}")
    bad = [x for x, y in pairs if not _is_number(y)]
    if bad:
        raise DataError(f"log {log.path}: {key!r} is not a finite number at {label} {bad[0]}")
    return label, [float(x) for x, _ in pairs], [float(y) for _, y in pairs]


def plot_curve(logs: Sequence[TrainLog], keys: Sequence[str], out: str, legend: Optional[Sequence[str]] = None,
               title: Optional[str] = None) -> Dict[str, Tuple[List[float], List[float]]]:
    """Plot ``keys`` of every log into ``out`` (PNG/JPEG/PDF/SVG by extension, written
    atomically); one panel for iteration-indexed (train) keys, one for epoch-indexed (val) keys.
    Returns ``{legend: (xs, ys)}`` of the plotted lines."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from detzoo.utils.fileio import atomic_open

    labels = list(legend) if legend else [f"{_short(log.path)}_{key}" for log in logs for key in keys]
    if len(labels) != len(logs) * len(keys):
        raise ConfigError(f"--legend has {len(labels)} names; give one per log and key "
                          f"({len(logs)} x {len(keys)} = {len(logs) * len(keys)})")
    series, by_axis = {}, {}
    names = iter(labels)
    for log in logs:
        for key in keys:
            x_label, xs, ys = curve_series(log, key)
            name = next(names)
            series[name] = (xs, ys)
            by_axis.setdefault(x_label, []).append((name, xs, ys))
    fmt = os.path.splitext(out)[1].lower().lstrip(".") or "png"
    if fmt == "jpg":
        fmt = "jpeg"
    if fmt not in ("png", "jpeg", "pdf", "svg"):
        raise ConfigError(f"--out {out}: use a .png, .jpg, .pdf or .svg file name")
    fig, axes = plt.subplots(1, len(by_axis), figsize=(7 * len(by_axis), 4.5), squeeze=False)
    for ax, (x_label, lines) in zip(axes[0], sorted(by_axis.items(), key=lambda kv: kv[0] != "iteration")):
        for name, xs, ys in lines:
            ax.plot(xs, ys, label=name, marker="o" if x_label == "epoch" else None, linewidth=1.2)
        ax.set_xlabel(x_label)
        ax.grid(True, alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_open(out, "wb") as f:
        fig.savefig(f, format=fmt, dpi=100)
    plt.close(fig)
    return series


def _short(path: str) -> str:
    name = os.path.basename(path)
    return name[:-len(".log.json")] if name.endswith(".log.json") else os.path.splitext(name)[0]
