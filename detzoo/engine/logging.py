"""Training logs in MMDetection 2.x's formats (mmcv ``TextLoggerHook``).

* ``<work_dir>/<timestamp>.log``: the console text, e.g.
  ``Epoch [1][50/7330]\\tlr: 2.000e-02, eta: 1 day, 0:12:31, time: 0.512, data_time: 0.010,
  memory: 3512, loss_rpn_cls: 0.1000, ..., loss: 0.8000``
* ``<work_dir>/<timestamp>.log.json``: a first line with run info (``env_info``, ``config``,
  ``seed``, ``exp_name``; MMDetection's ``analyze_logs.py`` skips line 0), then one JSON object
  per logged training interval (``mode="train"``, ``epoch`` 1-based, ``iter`` 1-based within
  the epoch, ``lr``, ``memory``, ``data_time``, the losses, ``loss``, ``time``) and one per
  evaluation (``mode="val"``, the metrics).
"""
from __future__ import annotations

import datetime
import json
import logging
import math
import os
import sys
import time
from collections import OrderedDict
from typing import Any, Iterable, Mapping

import torch

# Keys printed in the line's fixed prefix (so they are skipped among the trailing items).
_PREFIX_KEYS = ("mode", "epoch", "iter", "lr", "time", "data_time", "memory")


class LogBuffer:
    """Running averages of named scalars between two log lines."""

    def __init__(self) -> None:
        self._sums: "OrderedDict[str, float]" = OrderedDict()
        self._counts: dict[str, int] = {}

    def update(self, values: Mapping[str, float]) -> None:
        for key, value in values.items():
            self._sums[key] = self._sums.get(key, 0.0) + float(value)
            self._counts[key] = self._counts.get(key, 0) + 1

    def average(self) -> "OrderedDict[str, float]":
        return OrderedDict((k, s / self._counts[k]) for k, s in self._sums.items())

    def clear(self) -> None:
        self._sums.clear()
        self._counts.clear()

    def __len__(self) -> int:
        return len(self._sums)


def peak_memory_mb(device: torch.device | str | None = None) -> int:
    """Peak memory in MB: ``torch.cuda.max_memory_allocated`` on a GPU, else the process's
    peak resident set size (``resource.getrusage``; 0 where unavailable)."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device) / (1024 * 1024))
    try:
        import resource
    except ImportError:  # Windows
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return int(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024)


def format_eta(seconds: float) -> str:
    """``1 day, 0:12:31`` style (Python's timedelta text, whole seconds)."""
    return str(datetime.timedelta(seconds=int(max(seconds, 0))))


def _format_value(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def format_train_line(epoch: int, inner_iter: int, epoch_len: int, lr: float, eta_seconds: float,
                      values: Mapping[str, Any]) -> str:
    """Console line of a training interval; ``epoch`` and ``inner_iter`` are 1-based.

    ``values`` holds ``time``, ``data_time``, optionally ``memory``, then losses and other
    scalars in the order they should be printed.
    """
    line = f"Epoch [{epoch}][{inner_iter}/{epoch_len}]\tlr: {lr:.3e}, eta: {format_eta(eta_seconds)}, "
    if "time" in values:
        line += f"time: {values['time']:.3f}, data_time: {values.get('data_time', 0.0):.3f}, "
    if "memory" in values:
        line += f"memory: {values['memory']}, "
    items = [f"{k}: {_format_value(v)}" for k, v in values.items() if k not in _PREFIX_KEYS]
    return line + ", ".join(items)


def format_val_line(epoch: int, num_samples: int, metrics: Mapping[str, Any]) -> str:
    """``Epoch(val) [12][5000]\\tbbox_mAP: 0.3740, ...`` (mmcv's evaluation line)."""
    items = [f"{k}: {_format_value(v)}" for k, v in metrics.items()]
    return f"Epoch(val) [{epoch}][{num_samples}]\t" + ", ".join(items)


def _json_value(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, float):
        # 6 significant digits; mmcv rounds to 5 decimals, which would log a 1e-6 lr as 0.
        return float(f"{value:.6g}") if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (int, str, bool)) or value is None:
        return value
    if hasattr(value, "item"):  # numpy scalars
        return _json_value(value.item())
    return str(value)


class TrainLogger:
    """Console + ``<timestamp>.log`` text logger and ``<timestamp>.log.json`` lines.

    ``enabled=False`` (non-zero ranks) makes every method a no-op. Use as a context manager
    or call :meth:`close` so the file handles are released.
    """

    def __init__(self, work_dir: str | os.PathLike, timestamp: str | None = None, enabled: bool = True,
                 console: bool = True) -> None:
        self.enabled = enabled
        self.timestamp = timestamp or time.strftime("%Y%m%d_%H%M%S", time.localtime())
        self.text_path = os.path.join(os.fspath(work_dir), f"{self.timestamp}.log")
        self.json_path = self.text_path + ".json"
        self._logger = logging.getLogger(f"detzoo.train.{id(self)}")
        self._logger.propagate = False
        self._logger.setLevel(logging.INFO)
        self._json_file = None
        if not enabled:
            return
        os.makedirs(work_dir, exist_ok=True)
        formatter = logging.Formatter("%(asctime)s - detzoo - %(levelname)s - %(message)s")
        handlers: list[logging.Handler] = [logging.FileHandler(self.text_path, encoding="utf-8")]
        if console:
            handlers.append(logging.StreamHandler(sys.stderr))
        for handler in handlers:
            handler.setFormatter(formatter)
            self._logger.addHandler(handler)
        self._json_file = open(self.json_path, "a", encoding="utf-8")

    def info(self, message: str) -> None:
        if self.enabled:
            self._logger.info(message)

    def warning(self, message: str) -> None:
        if self.enabled:
            self._logger.warning(message)

    def dump_json(self, record: Mapping[str, Any]) -> None:
        """Append one JSON line (flushed, so a crash keeps every line written so far)."""
        if self._json_file is None:
            return
        self._json_file.write(json.dumps(_json_value(dict(record))) + "\n")
        self._json_file.flush()

    def log_train(self, epoch: int, inner_iter: int, epoch_len: int, lr: float, eta_seconds: float,
                  values: Mapping[str, Any]) -> None:
        """One training interval: console/text line and JSON line (epoch, iter 1-based)."""
        self.info(format_train_line(epoch, inner_iter, epoch_len, lr, eta_seconds, values))
        record: "OrderedDict[str, Any]" = OrderedDict(mode="train", epoch=epoch, iter=inner_iter, lr=lr)
        if "memory" in values:
            record["memory"] = values["memory"]
        record.update((k, v) for k, v in values.items() if k != "memory")
        self.dump_json(record)

    def log_val(self, epoch: int, num_samples: int, lr: float, metrics: Mapping[str, Any]) -> None:
        """Evaluation results after ``epoch`` (1-based) over ``num_samples`` images."""
        self.info(format_val_line(epoch, num_samples, metrics))
        self.dump_json(OrderedDict(mode="val", epoch=epoch, iter=num_samples, lr=lr, **metrics))

    def close(self) -> None:
        for handler in list(self._logger.handlers):
            handler.close()
            self._logger.removeHandler(handler)
        if self._json_file is not None:
            self._json_file.close()
            self._json_file = None

    def __enter__(self) -> "TrainLogger":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def progress_bar(iterable: Iterable[Any], total: int | None = None, desc: str | None = None,
                 enabled: bool = True) -> Iterable[Any]:
    """tqdm progress bar for evaluation loops (disabled on non-main ranks or when not wanted)."""
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, disable=not enabled, dynamic_ncols=True,
                file=sys.stderr, unit="img")
