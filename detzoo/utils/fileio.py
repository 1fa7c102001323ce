"""Atomic file writes: a result, config, picture or checkpoint is either complete or absent.

Everything detzoo writes goes through :func:`atomic_open`: data goes to a temp file in the same
folder, which is renamed over the target only after it was written completely, so a crash or a
full disk never leaves a half-written file and never damages the previous version.
"""
from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from typing import IO, Iterator, Optional


def _read_umask() -> int:
    mask = os.umask(0)  # the only way to read it: set and restore, once at import
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def default_file_mode() -> int:
    """The mode ``open()`` would give a new file (0666 minus the umask); temp files get 0600."""
    return 0o666 & ~_UMASK


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: Optional[str] = "utf-8",
                fsync: bool = False) -> Iterator[IO]:
    """Open a temp file beside ``path`` for writing; on a clean exit rename it to ``path``.

    mode: "w" (text) or "wb" (binary). fsync: flush to disk before the rename (and the folder
    after it), for files that must survive a power cut (checkpoints).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        if hasattr(os, "fchmod"):  # mkstemp makes 0600 files; give the usual 0666 & ~umask
            os.fchmod(fd, default_file_mode())
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as f:
            yield f
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if fsync:
        _fsync_dir(folder)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w") as f:
        f.write(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def _fsync_dir(folder: str) -> None:
    """Persist a rename (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_json(path: str | os.PathLike):
    """Parse a UTF-8 JSON file; malformed JSON or text is a DataError naming the file and where."""
    from detzoo.errors import DataError

    try:
        with open(path, "r", encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise DataError(f"{os.fspath(path)}: invalid JSON at line {exc.lineno}, column {exc.colno}: "
                        f"{exc.msg}") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{os.fspath(path)}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
