"""Download zoo checkpoints into a local cache: resumable, verified, never half-written.

    path = download(url)                        # -> $DETZOO_HOME/checkpoints/<file name>
    path = fetch("faster_rcnn_r50_fpn_1x_coco")  # a zoo row, alias or checkpoint stem

A file is streamed to ``<name>.part`` beside its final place; an existing ``.part`` is resumed
with an HTTP ``Range`` request (a server that ignores it answers 200 and the download restarts).
The complete file is hashed and compared with the sha256 prefix its name carries
(``..._20200130-047c8118.pth``, the MMDetection / torch.hub convention) or a given hash; only a
file that passed is renamed to its final name, so a name in the cache is always a verified file.
A mismatch deletes the ``.part``. ``DETZOO_ZOO_MIRROR`` (or ``mirror=``) replaces the scheme and
host of the known download sites with another base URL that serves the same paths.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional, Union
from urllib.parse import urlsplit

from detzoo.errors import CheckpointError, DetzooError
from detzoo.zoo.index import ZooEntry, checkpoint_file_name, get_entry, sha256_prefix_from_name

HOME_ENV = "DETZOO_HOME"
MIRROR_ENV = "DETZOO_ZOO_MIRROR"
#: hosts whose files a mirror serves under the same path
MIRRORED_HOSTS = (
    "download.openmmlab.com",
    "openmmlab.oss-cn-hangzhou.aliyuncs.com",
    "paddlemodels.bj.bcebos.com",
    "paddle-imagenet-models-name.bj.bcebos.com",
    "download.pytorch.org",
)
CHUNK = 1 << 20
_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError,
                   socket.timeout)


def home_dir() -> Path:
    """detzoo's cache folder: ``$DETZOO_HOME``, else ``~/.cache/detzoo``."""
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".cache" / "detzoo").expanduser()


def checkpoint_dir() -> Path:
    """Where downloaded checkpoints are kept: ``<home_dir()>/checkpoints``."""
    return home_dir() / "checkpoints"


def apply_mirror(url: str, mirror: Optional[str] = None) -> str:
    """``url`` with the scheme and host of a known download site replaced by ``mirror`` (default
    ``$DETZOO_ZOO_MIRROR``): ``https://download.openmmlab.com/mmdetection/v2.0/x.pth`` with mirror
    ``http://127.0.0.1:8000/zoo`` -> ``http://127.0.0.1:8000/zoo/mmdetection/v2.0/x.pth``."""
    mirror = mirror if mirror is not None else os.environ.get(MIRROR_ENV)
    if not mirror:
        return url
    parts = urlsplit(url)
    if parts.hostname not in MIRRORED_HOSTS:
        return url
    return mirror.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")


def sha256_file(path: Union[str, os.PathLike]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _lock(handle, part: Path) -> None:
    """Hold an exclusive lock on the .part file, so two processes never append to one file."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks, concurrent downloads are the user's care
        return
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise DetzooError(f"another process is downloading into {part}; wait for it to finish") from None


def _content_range_start(value: Optional[str]) -> Optional[int]:
    """Start offset of a ``Content-Range: bytes START-END/TOTAL`` header, or None."""
    try:
        unit, rest = value.split(" ", 1)
        return int(rest.split("-", 1)[0]) if unit == "bytes" else None
    except (AttributeError, ValueError):
        return None


def _stream(handle, source: str, name: str, timeout: float, progress: bool) -> None:
    """Append the rest of ``source`` to ``handle`` (opened for append), resuming at its size."""
    from tqdm import tqdm

    from detzoo import __version__

    have = handle.seek(0, os.SEEK_END)
    headers = {"User-Agent": f"detzoo/{__version__}"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(source, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing after `have`: the .part is complete; the hash decides
            return
        raise
    with response:
        if have and (response.status != 206 or _content_range_start(response.headers.get("Content-Range")) != have):
            # the server ignored the Range (200: the whole file follows) or sent other bytes
            handle.truncate(0)
            handle.seek(0)
            if response.status != 200:
                raise urllib.error.URLError(f"the server answered a resume from byte {have} with HTTP "
                                            f"{response.status} {response.headers.get('Content-Range')}; "
                                            "the partial file was discarded")
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        received = have
        with tqdm(total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024, desc=name,
                  disable=not progress, file=sys.stderr, leave=False) as bar:
            for block in iter(lambda: response.read(CHUNK), b""):
                handle.write(block)
                received += len(block)
                bar.update(len(block))
        handle.flush()
        os.fsync(handle.fileno())
    if total is not None and received < total:
        raise http.client.IncompleteRead(b"", total - received)


def download(url: str, dest_dir: Optional[Union[str, os.PathLike]] = None, sha256_prefix: Optional[str] = None,
             progress: bool = True, timeout: float = 30.0, sha256: Optional[str] = None,
             mirror: Optional[str] = None) -> Path:
    """Download ``url`` into ``dest_dir`` (default :func:`checkpoint_dir`) and return its path.

    The expected hash is ``sha256`` (full), else ``sha256_prefix``, else the prefix the file name
    carries; a file without any is stored unverified. An already cached file is returned as is.
    Raises DetzooError (network, one line naming the URL) or CheckpointError (hash mismatch; the
    partial file is deleted). An interrupted download keeps its ``.part`` for the next call.
    """
    dest = Path(dest_dir).expanduser() if dest_dir is not None else checkpoint_dir()
    name = checkpoint_file_name(url)
    if not name or name in (".", ".."):
        raise DetzooError(f"cannot download {url}: it names no file")
    final = dest / name
    if final.is_file():
        return final
    expected = (sha256 or sha256_prefix or sha256_prefix_from_name(name) or "").lower()
    source = apply_mirror(url, mirror)
    via = f" (via {source})" if source != url else ""
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DetzooError(f"cannot create the download folder {dest}: {exc.strerror or exc}") from None
    part = dest / f"{name}.part"
    with open(part, "ab") as handle:
        _lock(handle, part)
        try:
            if final.is_file():  # another process finished it while we opened the .part
                if not _size(handle):
                    part.unlink(missing_ok=True)
                return final
            _stream(handle, source, name, timeout, progress)
        except _NETWORK_ERRORS as exc:
            reason = _describe(exc)
            kept = _size(handle)
            if not kept:
                part.unlink(missing_ok=True)
            resume = f"; {kept} bytes kept in {part}, run again to resume" if kept else ""
            raise DetzooError(f"could not download {url}{via}: {reason}{resume}. Check the network or "
                              f"set {MIRROR_ENV}, or download the file by hand into {dest} (or pick "
                              f"another folder with --dir)") from None
        except OSError as exc:
            raise DetzooError(f"could not write {part}: {exc.strerror or exc}") from None
        got = sha256_file(part)
        if expected and not got.startswith(expected):
            part.unlink(missing_ok=True)
            raise CheckpointError(f"checkpoint {name} from {url}{via}: sha256 {got[:max(len(expected), 8)]} "
                                  f"does not match the expected {expected}; the download is corrupt or not "
                                  f"the published file, and was deleted")
        os.replace(part, final)
    return final


def _size(handle) -> int:
    """Bytes on disk in an open .part file (after flushing what can be flushed)."""
    try:
        handle.flush()
    except OSError:
        pass
    return os.fstat(handle.fileno()).st_size


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, http.client.IncompleteRead):
        return f"the connection closed with {exc.expected} bytes still to come"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__


def fetch(entry_or_name: Union[ZooEntry, str], dest_dir: Optional[Union[str, os.PathLike]] = None,
          progress: bool = True, mirror: Optional[str] = None, timeout: float = 30.0) -> Path:
    """Download the published checkpoint of a zoo row (a :class:`ZooEntry`, or a name, alias or
    checkpoint stem resolved with :func:`detzoo.zoo.index.find_entries`)."""
    entry = entry_or_name if isinstance(entry_or_name, ZooEntry) else _one_file(entry_or_name)
    if not entry.weights:
        raise CheckpointError(f"model-zoo entry {entry.name} has no published checkpoint ({entry.metafile})")
    return download(entry.weights, dest_dir, entry.sha256_prefix, progress=progress, mirror=mirror,
                    timeout=timeout)


def _one_file(query: str) -> ZooEntry:
    """A row for ``query``; rows sharing one checkpoint file (a stem) are all the same download."""
    from detzoo.zoo.index import find_entries

    found = find_entries(query)
    if len({e.weights for e in found}) > 1:
        return get_entry(query)  # raises: the name is ambiguous
    return found[0]


def resolve_zoo_checkpoint(name, dest_dir: Optional[Union[str, os.PathLike]] = None,
                           progress: bool = True) -> tuple[Path, Path]:
    """(config file, downloaded checkpoint) of the zoo detector ``name``, for
    ``init_detector(name, checkpoint="zoo")``. Raises CheckpointError when detzoo cannot load it."""
    if not isinstance(name, (str, os.PathLike)):
        raise CheckpointError("checkpoint='zoo' needs the config given as a model-zoo name, "
                              "e.g. init_detector('faster_rcnn_r50_fpn_1x_coco', checkpoint='zoo')")
    entry = get_entry(Path(name).stem if str(name).endswith(".py") else os.fspath(name))
    if entry.kind != "detector":
        raise CheckpointError(f"model-zoo entry {entry.name} is an ImageNet backbone, not a detector")
    if entry.status != "loadable":
        if entry.status == "planned":
            why = f"its config {entry.config} is not in detzoo yet" if entry.config else "detzoo has no config for it yet"
        elif not entry.weights:
            why = "it has no published checkpoint"
        else:
            why = f"{entry.source} checkpoints need a converter that detzoo does not have yet"
        raise CheckpointError(f"model-zoo entry {entry.name} is {entry.status}, not loadable: {why}")
    path = fetch(entry, dest_dir, progress=progress)
    from detzoo.zoo.converters import ZOO_CONVERTERS

    if entry.source in ZOO_CONVERTERS:  # PaddleDetection archives, torchvision state dicts
        path = _converted(path, ZOO_CONVERTERS[entry.source][0])
    return entry.config_path, path


def _converted(download: Path, source: str) -> Path:
    """The detzoo checkpoint converted from a downloaded file of another framework (``source``:
    a :func:`detzoo.zoo.converters.convert_file` source), cached beside it as ``<stem>.detzoo.pth``
    (written atomically; re-converted when the download is newer)."""
    from detzoo.engine.checkpoint import atomic_torch_save
    from detzoo.zoo.converters import convert_file
    from detzoo.zoo.index import file_stem

    target = download.with_name(file_stem(download.name) + ".detzoo.pth")
    if not target.is_file() or target.stat().st_mtime < download.stat().st_mtime:
        atomic_torch_save(convert_file(download, source), target)
    return target


__all__ = ["download", "fetch", "resolve_zoo_checkpoint", "apply_mirror", "home_dir", "checkpoint_dir",
           "sha256_file", "HOME_ENV", "MIRROR_ENV", "MIRRORED_HOSTS"]
