"""Config names of the zoo: a config's name is its file stem anywhere under ``configs/``."""
from __future__ import annotations

import difflib
import os
from pathlib import Path

import detzoo
from detzoo.errors import ConfigError

#: Environment variable that points the zoo at another ``configs/`` folder.
CONFIGS_ENV = "DETZOO_CONFIGS"


def configs_root() -> Path:
    """The ``configs/`` folder: ``$DETZOO_CONFIGS`` if set, else the one next to the package."""
    override = os.environ.get(CONFIGS_ENV)
    if override:
        return Path(override).expanduser().resolve()
    return Path(detzoo.__file__).resolve().parents[1] / "configs"


def _zoo_files(root: Path) -> dict[str, list[Path]]:
    """Stem -> files, skipping ``__init__.py`` and everything under folders named ``_*``."""
    index: dict[str, list[Path]] = {}
    if not root.is_dir():
        return index
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if path.name == "__init__.py" or any(part.startswith("_") for part in rel.parts[:-1]):
            continue
        index.setdefault(path.stem, []).append(path)
    return index


def list_config_names() -> list[str]:
    """Sorted names (file stems) of all zoo configs."""
    return sorted(_zoo_files(configs_root()))


def resolve_config(name_or_path: str | os.PathLike) -> Path:
    """Path of a config given as an existing file path, a path inside ``configs/``
    (``faster_rcnn/faster_rcnn_r50_fpn_1x_coco``) or a zoo name (``faster_rcnn_r50_fpn_1x_coco``).
    """
    text = os.fspath(name_or_path)
    root = configs_root()
    given = Path(text).expanduser()
    for candidate in (given, root / text, root / f"{text}.py"):
        if candidate.is_file():
            return candidate.resolve()
    if given.is_dir():
        raise ConfigError(f"config path {text} is a folder, not a .py file")
    if os.sep in text or "/" in text:
        raise ConfigError(f"config file not found: {text}")
    name = text[:-3] if text.endswith(".py") else text
    index = _zoo_files(root)
    if name in index:
        matches = index[name]
        if len(matches) > 1:
            listed = ", ".join(str(p.relative_to(root)) for p in matches)
            raise ConfigError(f"config name '{name}' is ambiguous under {root}: {listed}; give a path")
        return matches[0].resolve()
    close = difflib.get_close_matches(name, list(index), n=5, cutoff=0.5)
    hint = f"; nearest: {', '.join(close)}" if close else ""
    raise ConfigError(f"unknown config '{text}': no such file and no config of that name under {root}{hint}")
