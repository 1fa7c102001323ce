"""Checkpoints in MMDetection's layout, written atomically and read without unpickling code.

A checkpoint is ``{"meta": {...}, "state_dict": {...}, "optimizer": ..., "scheduler": ...,
"rng": ...}``. ``meta`` holds ``epoch`` (completed epochs) and ``iter`` (completed iterations)
as mmcv's runner writes them, plus ``config`` (the resolved config text), ``CLASSES``,
``detzoo_version`` and ``time``. Published MMDetection 2.x/3.x files (``meta`` +
``state_dict``) and bare state dicts load as well; DDP's ``module.`` prefixes are stripped.

The work dir's most recent checkpoint is named twice, both replaced atomically: a ``latest.pth``
symlink (mmcv 1.x) and a ``last_checkpoint`` text file holding the file name (mmengine).
"""
from __future__ import annotations

import glob
import logging
import os
import re
import shutil
import sys
import time
import uuid
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
from torch import nn

from detzoo.engine.seed import get_rng_state
from detzoo.errors import CheckpointError
from detzoo.utils.fileio import atomic_open

LATEST_LINK = "latest.pth"
POINTER_FILE = "last_checkpoint"
_UNSAFE_HINT = (
    "unpickling such objects can run arbitrary code from the file, so detzoo loads checkpoints "
    "with torch.load(weights_only=True), which only accepts tensors and plain containers. If "
    "you trust where the file came from, load it with allow_pickle=True (load_checkpoint(..., "
    "weights_only=False)) or pass --unsafe-load on the command line"
)
logger = logging.getLogger("detzoo")


# --- writing -------------------------------------------------------------------------------
def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside DistributedDataParallel / DataParallel wrappers."""
    while isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
        model = model.module
    return model


def strip_prefix(state_dict: Mapping[str, Any], prefix: str = "module.") -> "OrderedDict[str, Any]":
    """Remove a leading ``prefix`` from every key that has it (what DDP adds)."""
    return OrderedDict((k[len(prefix):] if k.startswith(prefix) else k, v) for k, v in state_dict.items())


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temp file beside ``path``, fsync, then rename over ``path``.

    On any failure the temp file is removed and an existing ``path`` is left as it was.
    Raises CheckpointError for I/O failures (disk full, permissions).
    """
    path = os.fspath(path)
    try:
        with atomic_open(path, "wb", fsync=True) as f:
            torch.save(obj, f)
    except (OSError, RuntimeError) as exc:
        raise CheckpointError(f"could not write checkpoint {path}: {exc}{_free_space_note(path)}") from exc


def _free_space_note(path: str) -> str:
    try:
        free = shutil.disk_usage(os.path.dirname(os.path.abspath(path))).free
    except OSError:
        return ""
    return f" ({free / 2**20:.0f} MiB free on that disk)"


def _class_names(model: nn.Module) -> tuple[str, ...] | None:
    names = getattr(model, "class_names", None) or getattr(model, "CLASSES", None)
    return tuple(names) if names is not None else None


def save_checkpoint(path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    scheduler: Any = None, meta: Mapping[str, Any] | None = None,
                    save_rng: bool = True) -> str:
    """Write a training checkpoint atomically; returns the path.

    ``meta`` (e.g. ``epoch``, ``iter``, ``config``) is completed with ``detzoo_version``,
    ``time`` and ``CLASSES`` (from ``model.class_names``). Weights are saved from the model
    inside any DDP wrapper, on the CPU. ``scheduler`` is anything with ``state_dict()``.
    """
    from detzoo import __version__

    model = unwrap_model(model)
    full_meta = dict(meta or {})
    full_meta.setdefault("detzoo_version", __version__)
    full_meta["time"] = time.asctime()
    classes = _class_names(model)
    if classes is not None:
        full_meta.setdefault("CLASSES", classes)
    state_dict = OrderedDict((k, v.detach().cpu()) for k, v in model.state_dict().items())
    checkpoint: dict[str, Any] = {"meta": full_meta, "state_dict": strip_prefix(state_dict)}
    if optimizer is not None:
        checkpoint["optimizer"] = optimizer.state_dict()
    if scheduler is not None:
        checkpoint["scheduler"] = scheduler.state_dict()
    if save_rng:
        checkpoint["rng"] = get_rng_state()
    atomic_torch_save(checkpoint, path)
    return os.fspath(path)


def update_latest(work_dir: str | os.PathLike, checkpoint_path: str | os.PathLike) -> None:
    """Point ``latest.pth`` (symlink) and ``last_checkpoint`` (text) at ``checkpoint_path``."""
    work_dir = os.fspath(work_dir)
    name = os.path.relpath(os.path.abspath(checkpoint_path), os.path.abspath(work_dir))
    try:
        with atomic_open(os.path.join(work_dir, POINTER_FILE), "w", fsync=True) as f:
            f.write(name)
    except OSError as exc:
        raise CheckpointError(f"could not update {os.path.join(work_dir, POINTER_FILE)}: {exc}") from exc
    token = f"{os.getpid()}.{uuid.uuid4().hex[:8]}"
    link_tmp = os.path.join(work_dir, f".{LATEST_LINK}.{token}.tmp")
    try:
        os.symlink(name, link_tmp)
        os.replace(link_tmp, os.path.join(work_dir, LATEST_LINK))
    except (OSError, NotImplementedError):
        # Symlinks may be unavailable (Windows, some mounts); the pointer file is enough.
        if os.path.lexists(link_tmp):
            os.unlink(link_tmp)


def remove_partial_files(work_dir: str | os.PathLike) -> list[str]:
    """Delete the temp files that an interrupted save (a killed process, a full disk) left in
    ``work_dir`` (``.<name>.<random>.tmp`` from :func:`detzoo.utils.fileio.atomic_open` and the
    ``latest.pth`` link's temp); returns their paths. The checkpoints themselves are never
    partial: they only appear by an atomic rename."""
    removed = []
    for path in glob.glob(os.path.join(os.fspath(work_dir), ".*.tmp")):
        if re.fullmatch(r"\.(.+\.pth|" + re.escape(POINTER_FILE) + r")\..+\.tmp", os.path.basename(path)):
            try:
                os.unlink(path)
                removed.append(path)
            except OSError:
                pass
    return removed


def latest_checkpoint(work_dir: str | os.PathLike) -> str | None:
    """Path of the newest checkpoint in ``work_dir`` or None.

    Looks at the ``last_checkpoint`` pointer, then the ``latest.pth`` link, then the highest
    ``epoch_<n>.pth``.
    """
    work_dir = os.fspath(work_dir)
    pointer = os.path.join(work_dir, POINTER_FILE)
    if os.path.isfile(pointer):
        with open(pointer, encoding="utf-8") as f:
            target = f.read().strip()
        target = os.path.join(work_dir, target)  # an absolute path (mmengine) stays absolute
        if os.path.isfile(target):
            return target
    link = os.path.join(work_dir, LATEST_LINK)
    if os.path.isfile(link):
        return os.path.realpath(link)
    epochs = []
    for candidate in glob.glob(os.path.join(work_dir, "epoch_*.pth")):
        match = re.fullmatch(r"epoch_(\d+)\.pth", os.path.basename(candidate))
        if match:
            epochs.append((int(match.group(1)), candidate))
    return max(epochs)[1] if epochs else None


# --- reading -------------------------------------------------------------------------------
def _refused_globals(path: str, message: str) -> tuple[list[str], bool]:
    """(globals the weights-only unpickler refused, whether the file looks truncated)."""
    if zipfile.is_zipfile(path):
        try:
            return list(torch.serialization.get_unsafe_globals_in_checkpoint(path)), False
        except Exception:  # noqa: BLE001 - fall back to the error message
            pass
    names = re.findall(r"GLOBAL (\S+) was not an allowed global", message)
    # A truncated legacy file cuts a name short ("torch.FloatStor", "collections.Or"): a name
    # that an already imported module lacks cannot be a real global. __main__ is excluded: the
    # class of a script that pickled it is legitimately absent from this process.
    truncated = False
    for name in names:
        module, _, attr = name.rpartition(".")
        if not module or not attr or (module != "__main__" and module in sys.modules
                          and not hasattr(sys.modules[module], attr)):
            truncated = True
    return names, truncated


def _torch_load(path: str, map_location: Any, weights_only: bool) -> Any:
    if not os.path.exists(path):
        raise CheckpointError(f"checkpoint {path}: file not found")
    if os.path.isdir(path):
        raise CheckpointError(f"checkpoint {path}: is a directory, not a checkpoint file")
    if os.path.getsize(path) == 0:
        raise CheckpointError(f"checkpoint {path}: file is empty (an interrupted download or save?)")
    try:
        return torch.load(path, map_location=map_location, weights_only=weights_only)
    except PermissionError as exc:
        raise CheckpointError(f"checkpoint {path}: cannot be read ({exc.strerror})") from None
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a damaged file
        message = str(exc)
        if weights_only and "Weights only load failed" in message:
            names, truncated = _refused_globals(path, message)
            if names and not truncated:  # no named global: a damaged stream ("Unsupported operand")
                shown = ", ".join(names[:5])
                raise CheckpointError(
                    f"checkpoint {path}: contains pickled Python objects ({shown}); {_UNSAFE_HINT}"
                ) from None
        if not weights_only and isinstance(exc, (ModuleNotFoundError, AttributeError)):
            raise CheckpointError(
                f"checkpoint {path}: unpickling it needs code that is not available here ({exc}); "
                "install the package that wrote it, or load a copy holding only weights"
            ) from None
        first_line = message.strip().splitlines()[0] if message.strip() else ""
        raise CheckpointError(
            f"checkpoint {path}: cannot be read, the file is corrupt, truncated or not a PyTorch "
            f"checkpoint ({type(exc).__name__}: {first_line[:200]})"
        ) from None


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    )


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu", weights_only: bool = True) -> dict:
    """Read a checkpoint into a dict that always has ``state_dict`` (``module.`` stripped) and
    ``meta`` (``{}`` when the file has none).

    Accepts detzoo and MMDetection 2.x/3.x files (``state_dict``), torchvision-reference style
    files (``model``) and bare state dicts. ``weights_only=False`` unpickles arbitrary objects:
    only for trusted files. Raises CheckpointError naming the file when it is missing,
    unreadable, has no weights, or (with ``weights_only``) holds pickled Python objects.
    """
    path = os.fspath(path)
    if path.startswith(("http://", "https://")):
        raise CheckpointError(f"checkpoint {path}: is a URL; download it first (see detzoo.zoo)")
    raw = _torch_load(path, map_location, weights_only)
    if _is_state_dict(raw):
        checkpoint: dict[str, Any] = {"meta": {}, "state_dict": raw}
    elif isinstance(raw, Mapping) and isinstance(raw.get("state_dict"), Mapping):
        checkpoint = dict(raw)
    elif isinstance(raw, Mapping) and _is_state_dict(raw.get("model")):
        checkpoint = {k: v for k, v in raw.items() if k != "model"}
        checkpoint["state_dict"] = raw["model"]
    else:
        keys = list(raw)[:8] if isinstance(raw, Mapping) else type(raw).__name__
        raise CheckpointError(f"checkpoint {path}: holds no model weights ('state_dict'); found {keys}")
    checkpoint["state_dict"] = strip_prefix(checkpoint["state_dict"])
    checkpoint["meta"] = dict(checkpoint.get("meta") or {})
    return checkpoint


@dataclass
class LoadResult:
    """What :func:`load_model_weights` did. ``mismatched_keys``: (key, checkpoint shape, model shape)."""

    missing_keys: list[str] = field(default_factory=list)
    unexpected_keys: list[str] = field(default_factory=list)
    mismatched_keys: list[tuple[str, tuple, tuple]] = field(default_factory=list)
    checkpoint: dict = field(default_factory=dict)

    def describe(self, limit: int = 5) -> str:
        def listing(items: list[str]) -> str:
            more = f", ... (+{len(items) - limit} more)" if len(items) > limit else ""
            return ", ".join(items[:limit]) + more

        parts = []
        if self.missing_keys:
            parts.append(f"{len(self.missing_keys)} missing keys ({listing(self.missing_keys)})")
        if self.unexpected_keys:
            parts.append(f"{len(self.unexpected_keys)} unexpected keys ({listing(self.unexpected_keys)})")
        if self.mismatched_keys:
            shapes = [f"{k}: checkpoint {list(c)} vs model {list(m)}" for k, c, m in self.mismatched_keys]
            parts.append(f"{len(shapes)} shape mismatches ({listing(shapes)})")
        return "; ".join(parts)


def load_model_weights(model: nn.Module, ckpt_or_path: str | os.PathLike | Mapping[str, Any],
                       strict: bool = True, allow_pickle: bool = False) -> LoadResult:
    """Load weights into ``model`` (DDP wrappers are looked through).

    ``ckpt_or_path``: a file, a checkpoint dict or a state dict. ``strict=True`` raises
    CheckpointError listing missing/unexpected keys and shape mismatches, leaving the model
    unchanged; ``strict=False`` loads what fits, logs a warning and reports the rest.
    """
    source = "checkpoint"
    if isinstance(ckpt_or_path, (str, os.PathLike)):
        source = f"checkpoint {os.fspath(ckpt_or_path)}"
        checkpoint = load_checkpoint(ckpt_or_path, weights_only=not allow_pickle)
    elif _is_state_dict(ckpt_or_path):
        checkpoint = {"meta": {}, "state_dict": strip_prefix(ckpt_or_path)}
    else:
        checkpoint = dict(ckpt_or_path)
        checkpoint["state_dict"] = strip_prefix(checkpoint["state_dict"])
    state_dict = checkpoint["state_dict"]
    model = unwrap_model(model)
    # a model whose published checkpoints spell some keys differently (MMDetection 2.x vs 3.x
    # names) maps them to its own names first
    convert = getattr(model, "convert_checkpoint_keys", None)
    if convert is not None:
        state_dict = convert(state_dict)
    own = model.state_dict()
    result = LoadResult(checkpoint=checkpoint)
    result.missing_keys = [k for k in own if k not in state_dict]
    result.unexpected_keys = [k for k in state_dict if k not in own]
    fitting = OrderedDict()
    for key, value in state_dict.items():
        if key not in own:
            continue
        if tuple(value.shape) != tuple(own[key].shape):
            result.mismatched_keys.append((key, tuple(value.shape), tuple(own[key].shape)))
        else:
            fitting[key] = value
    problems = result.describe()
    if strict and problems:
        raise CheckpointError(f"{source} does not fit {type(model).__name__}: {problems}")
    model.load_state_dict(fitting, strict=False)
    if problems:
        logger.warning("%s loaded partially into %s: %s", source, type(model).__name__, problems)
    return result


def read_meta(path: str | os.PathLike) -> dict:
    """``meta`` of a checkpoint without loading its tensors into memory (memory-mapped)."""
    path = os.fspath(path)
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"checkpoint {path}: cannot read its meta ({type(exc).__name__})") from None
    return dict(raw.get("meta") or {}) if isinstance(raw, Mapping) else {}


__all__ = ["save_checkpoint", "load_checkpoint", "load_model_weights", "latest_checkpoint",
           "update_latest", "atomic_torch_save", "strip_prefix", "unwrap_model", "LoadResult",
           "read_meta"]
