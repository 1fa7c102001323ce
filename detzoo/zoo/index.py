"""The model-zoo index: every ``configs/<method>/metafile.yml``, read into :class:`ZooEntry` rows.

The metafiles are the data (schema and statuses: docs/zoo.md). A metafile is a mapping with
``method`` (the default method of its rows), optional ``paper`` / ``notes``, ``models`` (the
rows) and any number of ``_``-prefixed keys that only hold YAML anchors for ``<<:`` merges.

A row's status is computed when the index is read, never stored, because configs and backbones
are added over time:

* ``planned``   -- detzoo cannot build it yet (no config under ``configs/``, or no backbone class);
* ``buildable`` -- its config is a file under ``configs/`` (a pretrained row: its backbone class
  exists), so the model builds with random weights;
* ``loadable``  -- buildable, and its published checkpoint is in a format detzoo reads
  (MMDetection ``.pth``), or one a converter reads (``detzoo.zoo.converters.ZOO_CONVERTERS``:
  PaddleDetection archives, torchvision ``.pth``), converted on load.
"""
from __future__ import annotations

import difflib
import os
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional
from urllib.parse import unquote, urlsplit

from detzoo.errors import ConfigError

METAFILE = "metafile.yml"
STATUSES = ("planned", "buildable", "loadable")  # ordered: each implies the one before
SOURCES = ("MMDetection", "PaddleDetection", "torchvision", "detzoo")
KINDS = ("detector", "pretrained")
NUMBER = (int, float)

#: field -> accepted Python types (None always allowed, meaning "not given / not applicable")
FIELD_TYPES: dict[str, tuple] = {
    "name": (str,), "method": (str,), "kind": (str,), "source": (str,), "seed_table": (str,),
    "config": (str,), "backbone": (str,), "style": (str,), "schedule": (str,), "epochs": (int,),
    "training_data": (str,), "test_data": (str,), "images_per_gpu": (int,), "gpus": (int,),
    "test_size": (int,), "lr": NUMBER, "box_ap": NUMBER, "mask_ap": NUMBER, "ar_1000": NUMBER,
    "metric": (str,), "memory_gb": NUMBER, "inference_ms": NUMBER, "weights": (str,),
    "sha256_prefix": (str,), "training_log": (str,), "aliases": (list,), "backbone_cfg": (dict,),
    "img_norm": (str,), "img_norm_cfg": (dict,), "original": (str,), "augmentation": (str,),
    "notes": (str,), "throughput_img_s": (dict,),
}
_REQUIRED = ("name", "source")
_ORDER = {k: i for i, k in enumerate((
    "name", "method", "kind", "status", "source", "seed_table", "config", "backbone", "style",
    "schedule", "epochs", "training_data", "test_data", "images_per_gpu", "gpus", "test_size", "lr",
    "box_ap", "mask_ap", "ar_1000", "metric", "memory_gb", "inference_ms", "augmentation", "weights",
    "sha256_prefix", "checkpoint_file", "aliases", "backbone_cfg", "img_norm", "img_norm_cfg",
    "original", "training_log", "throughput_img_s", "notes", "paper", "folder", "metafile"))}
_TOP_LEVEL = ("method", "paper", "notes", "models")
# MMDetection / torch.hub convention: "<stem>-<first 8+ hex digits of the file's sha256>.<ext>"
_HASH_SUFFIX = re.compile(r"-([0-9a-f]{8,64})$")


def checkpoint_file_name(url: str) -> str:
    """The file name a weights URL downloads to (its last path part, %-decoded)."""
    return unquote(posixpath.basename(urlsplit(url).path))


def file_stem(file_name: str) -> str:
    """``faster_rcnn_r50_1x.tar`` -> ``faster_rcnn_r50_1x``; ``x-047c8118.pth`` -> ``x-047c8118``."""
    return file_name.split(".", 1)[0] if file_name.endswith((".tar.gz", ".tar.bz2")) else os.path.splitext(file_name)[0]


def sha256_prefix_from_name(file_name: str) -> Optional[str]:
    """The sha256 prefix a checkpoint file name carries (``..._20200130-047c8118.pth``), or None."""
    match = _HASH_SUFFIX.search(file_stem(file_name))
    return match.group(1) if match else None


@dataclass(frozen=True)
class ZooEntry:
    """One row of the index: ``fields`` as written in the metafile (anchors merged), plus where it
    came from and its computed status. ``config_path`` is the config file when it exists."""

    name: str
    folder: str
    metafile: Path
    fields: Mapping[str, Any]
    status: str
    config_path: Optional[Path] = None
    paper: Optional[str] = field(default=None, compare=False)

    def get(self, key: str, default: Any = None) -> Any:
        value = self.fields.get(key)
        return default if value is None else value

    method = property(lambda self: self.fields["method"])
    kind = property(lambda self: self.get("kind", "detector"))
    source = property(lambda self: self.fields["source"])
    config = property(lambda self: self.fields.get("config"))
    box_ap = property(lambda self: self.fields.get("box_ap"))
    mask_ap = property(lambda self: self.fields.get("mask_ap"))
    weights = property(lambda self: self.fields.get("weights"))
    sha256_prefix = property(lambda self: self.fields.get("sha256_prefix"))

    @property
    def checkpoint_file(self) -> Optional[str]:
        return checkpoint_file_name(self.weights) if self.weights else None

    @property
    def checkpoint_stem(self) -> Optional[str]:
        return file_stem(self.checkpoint_file) if self.weights else None

    def at_least(self, status: str) -> bool:
        return STATUSES.index(self.status) >= STATUSES.index(status)

    def as_dict(self) -> dict:
        """All fields plus ``kind``, ``status``, ``checkpoint_file``, ``paper``, ``folder`` and
        ``metafile``, in a reading order (JSON-ready)."""
        extra = dict(kind=self.kind, status=self.status, checkpoint_file=self.checkpoint_file,
                     paper=self.paper, folder=self.folder, metafile=str(self.metafile))
        merged = {**self.fields, **extra}
        return {k: merged[k] for k in sorted(merged, key=lambda k: _ORDER.get(k, len(_ORDER)))}


# --- reading ---------------------------------------------------------------------------------
def _yaml_load(path: Path) -> Any:
    try:
        import yaml
    except ImportError:  # pragma: no cover - pyyaml is a dependency
        raise ConfigError("reading the model-zoo index needs PyYAML: pip install pyyaml") from None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.load(f, Loader=loader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"metafile {path}: not valid YAML ({' '.join(str(exc).split())})") from None


def _check_row(row: dict, where: str) -> None:
    for key in _REQUIRED:
        if not row.get(key):
            raise ConfigError(f"{where}: missing required field '{key}'")
    for key, value in row.items():
        if key not in FIELD_TYPES:
            close = difflib.get_close_matches(key, list(FIELD_TYPES), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"{where}: unknown field '{key}'{hint}")
        types = FIELD_TYPES[key]
        if value is not None and (not isinstance(value, types) or isinstance(value, bool) and bool not in types):
            shown = "/".join(t.__name__ for t in types)
            extra = " (quote an all-digit sha256 prefix)" if key == "sha256_prefix" else ""
            raise ConfigError(f"{where}: field '{key}' must be {shown} or null, got {value!r}{extra}")
    if row["source"] not in SOURCES:
        raise ConfigError(f"{where}: source {row['source']!r} is not one of {', '.join(SOURCES)}")
    if row.get("kind", "detector") not in KINDS:
        raise ConfigError(f"{where}: kind {row['kind']!r} is not one of {', '.join(KINDS)}")
    config = row.get("config")
    if config is not None and (not config.endswith(".py") or config.startswith("/") or ".." in config.split("/")):
        raise ConfigError(f"{where}: config {config!r} must be a .py path relative to configs/")
    weights = row.get("weights")
    if weights is not None and not weights.startswith(("https://", "http://")):
        raise ConfigError(f"{where}: weights {weights!r} must be an http(s) URL")
    named = sha256_prefix_from_name(checkpoint_file_name(weights)) if weights else None
    given = row.get("sha256_prefix")
    if given is not None and not re.fullmatch(r"[0-9a-f]{8,64}", given):
        raise ConfigError(f"{where}: sha256_prefix {given!r} must be 8-64 lowercase hex digits")
    if named != given:
        raise ConfigError(f"{where}: sha256_prefix is {given!r} but the weights file name carries {named!r}")
    cfg = row.get("backbone_cfg")
    if cfg is not None and not isinstance(cfg.get("type"), str):
        raise ConfigError(f"{where}: backbone_cfg needs a 'type' (a class in detzoo.models.backbones)")


def read_metafile(path: Path) -> tuple[dict, list[dict]]:
    """(file-level info, validated rows with ``method`` filled in) of one metafile."""
    data = _yaml_load(path)
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        raise ConfigError(f"metafile {path}: must be a mapping with a 'models' list")
    for key in data:
        if key not in _TOP_LEVEL and not str(key).startswith("_"):
            raise ConfigError(f"metafile {path}: unknown top-level key '{key}' "
                              f"(allowed: {', '.join(_TOP_LEVEL)}, and _-prefixed anchor holders)")
    rows = []
    for i, raw in enumerate(data["models"]):
        label = raw.get("name", f"#{i + 1}") if isinstance(raw, dict) else f"#{i + 1}"
        where = f"metafile {path}, entry {label}"
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: must be a mapping of fields")
        row = dict(raw)
        row.setdefault("method", data.get("method"))
        _check_row(row, where)
        if not row.get("method"):
            raise ConfigError(f"{where}: no method (set it on the row or at the top of the file)")
        rows.append(row)
    return {k: v for k, v in data.items() if k in ("method", "paper", "notes")}, rows


def _backbone_exists(type_name: str) -> bool:
    from detzoo.models import backbones

    return isinstance(getattr(backbones, type_name, None), type)


def compute_status(row: Mapping[str, Any], root: Path) -> tuple[str, Optional[Path]]:
    """(status, config path or None) of a validated row against the ``configs/`` tree at ``root``."""
    weights = row.get("weights") or ""
    torch_format = weights.endswith((".pth", ".pt"))
    if row.get("kind", "detector") == "pretrained":
        cfg = row.get("backbone_cfg")
        if not cfg or not _backbone_exists(cfg["type"]):
            return "planned", None
        # Paddle ImageNet archives load through the converter (detzoo/models/backbones/pretrained.py)
        paddle_archive = row["source"] == "PaddleDetection" and weights.endswith((".tar", ".pdparams"))
        return ("loadable" if torch_format or paddle_archive else "buildable"), None
    config = row.get("config")
    path = root / config if config else None
    if path is None or not path.is_file():
        return "planned", None
    # Paddle archives and torchvision state dicts load through detzoo.zoo.converters: their configs
    # are written to receive the converter's output (tests/zoo/test_paddle_*, test_torchvision_*:
    # every such row with a config maps strictly)
    from detzoo.zoo.converters import ZOO_CONVERTERS

    converted = ZOO_CONVERTERS.get(row["source"])
    loadable = weights.endswith(converted[1]) if converted else torch_format
    return ("loadable" if loadable else "buildable"), path.resolve()


def load_index(root: Optional[os.PathLike] = None) -> list[ZooEntry]:
    """All rows of every ``<root>/*/metafile.yml`` (root: the zoo's ``configs/``), statuses computed.

    Raises ConfigError naming the file and entry for a malformed metafile or a duplicate name.
    """
    from detzoo.zoo.configs import configs_root

    root = Path(root) if root is not None else configs_root()
    entries: list[ZooEntry] = []
    seen: dict[str, Path] = {}
    for path in sorted(root.glob(f"*/{METAFILE}")):
        info, rows = read_metafile(path)
        for row in rows:
            name = row["name"]
            if name in seen:
                raise ConfigError(f"metafile {path}, entry {name}: the name is already used in {seen[name]}")
            seen[name] = path
            status, config_path = compute_status(row, root)
            entries.append(ZooEntry(name=name, folder=path.parent.name, metafile=path, fields=row,
                                    status=status, config_path=config_path, paper=info.get("paper")))
    return entries


# --- looking up ------------------------------------------------------------------------------
def _squash(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.lower())


def find_entries(query: str, entries: Optional[Iterable[ZooEntry]] = None) -> list[ZooEntry]:
    """Rows named ``query``: a row name, an alias (``torchvision://resnet50``), or a checkpoint
    file name or stem (``faster_rcnn_r50_vd_fpn_2x``, ``resnet50-19c8e357``), which may be shared
    by several rows. Raises ConfigError with the closest names when nothing matches."""
    entries = list(load_index() if entries is None else entries)
    exact = [e for e in entries if e.name == query]
    if exact:
        return exact
    aliased = [e for e in entries if query in (e.get("aliases") or [])]
    if aliased:
        return aliased
    by_file = [e for e in entries if e.weights and query in (e.checkpoint_file, e.checkpoint_stem)]
    if by_file:
        return by_file
    known = {e.name for e in entries} | {e.checkpoint_stem for e in entries if e.weights}
    known |= {a for e in entries for a in (e.get("aliases") or [])}
    close = difflib.get_close_matches(query, sorted(known), n=5, cutoff=0.6)
    hint = f"; nearest: {', '.join(close)}" if close else "; `detzoo zoo list` shows all"
    raise ConfigError(f"no model-zoo entry or checkpoint named '{query}'{hint}")


def get_entry(query: str, entries: Optional[Iterable[ZooEntry]] = None) -> ZooEntry:
    """The single row ``query`` names; a checkpoint stem shared by several rows is ambiguous."""
    found = find_entries(query, entries)
    if len(found) > 1:
        names = ", ".join(e.name for e in found)
        raise ConfigError(f"'{query}' names the checkpoint of {len(found)} entries ({names}); give one of them")
    return found[0]


def filter_entries(entries: Iterable[ZooEntry], method: Optional[str] = None,
                   min_ap: Optional[float] = None, status: Optional[str] = None,
                   exact_status: bool = False, source: Optional[str] = None) -> list[ZooEntry]:
    """Rows matching every given filter.

    method: case/punctuation-insensitive substring of the method or the folder ("fasterrcnn",
    "dcn", "voc"); min_ap: box AP at least this (rows without a box AP drop out); status: at
    least this status (``exact_status``: exactly); source: one of :data:`SOURCES`.
    """
    if status is not None and status not in STATUSES:
        raise ConfigError(f"unknown status '{status}'; one of {', '.join(STATUSES)}")
    out = []
    for e in entries:
        if method and _squash(method) not in _squash(e.method) + " " + _squash(e.folder):
            continue
        if min_ap is not None and (e.box_ap is None or e.box_ap < min_ap):
            continue
        if status and (e.status != status if exact_status else not e.at_least(status)):
            continue
        if source and source.lower() != e.source.lower():
            continue
        out.append(e)
    return out


__all__ = ["ZooEntry", "load_index", "find_entries", "get_entry", "filter_entries", "read_metafile",
           "compute_status", "checkpoint_file_name", "file_stem", "sha256_prefix_from_name",
           "STATUSES", "SOURCES", "KINDS", "FIELD_TYPES", "METAFILE"]
