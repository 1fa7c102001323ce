"""`Config`: the top-level names of an executed config file, as nested attribute dicts."""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Iterator

from detzoo.config.dump import config_to_source
from detzoo.utils.fileio import atomic_write_text
from detzoo.config.loader import execute_config, is_config_value
from detzoo.config.overrides import get_dotted, parse_option_value, set_dotted


def _convert(value: Any) -> Any:
    """Nested dicts -> ConfigDict, inside lists and tuples too (a tuple stays a tuple)."""
    if isinstance(value, ConfigDict):
        return value
    if isinstance(value, dict):
        return ConfigDict(value)
    if type(value) is list:
        return [_convert(v) for v in value]
    if type(value) is tuple:
        return tuple(_convert(v) for v in value)
    return value


def _to_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if type(value) is list:
        return [_to_plain(v) for v in value]
    if type(value) is tuple:
        return tuple(_to_plain(v) for v in value)
    return value


class ConfigDict(dict):
    """A dict whose keys are also attributes (``cfg.model.backbone.depth``).

    Values stored through ``[]``, attributes, ``update`` or the constructor are converted:
    nested dicts become ConfigDicts, also inside lists and tuples.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.update(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"config has no key '{name}'") from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(f"config has no key '{name}'") from None

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, _convert(value))

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def copy(self) -> "ConfigDict":
        return ConfigDict(self)

    def to_dict(self) -> dict:
        """Plain nested dicts/lists/tuples (values other than containers are shared)."""
        return _to_plain(self)


class Config:
    """A loaded config: ``cfg.model``, ``cfg["data"]``, ``cfg.get("optimizer.lr")``.

    ``filename`` is the file it was loaded from (None for configs built in code).
    """

    def __init__(self, cfg_dict: dict | None = None, filename: str | os.PathLike | None = None):
        object.__setattr__(self, "_cfg_dict", ConfigDict(cfg_dict or {}))
        object.__setattr__(self, "_filename", None if filename is None else str(filename))

    @property
    def filename(self) -> str | None:
        return self._filename

    # --- mapping access -------------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._cfg_dict, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_") or name == "filename":
            raise AttributeError(f"cannot set '{name}' on a Config")
        self._cfg_dict[name] = value

    def __getitem__(self, key: str) -> Any:
        return self._cfg_dict[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._cfg_dict[key] = value

    def __delitem__(self, key: str) -> None:
        del self._cfg_dict[key]

    def __contains__(self, key: object) -> bool:
        return key in self._cfg_dict

    def __iter__(self) -> Iterator[str]:
        return iter(self._cfg_dict)

    def __len__(self) -> int:
        return len(self._cfg_dict)

    def keys(self):
        return self._cfg_dict.keys()

    def values(self):
        return self._cfg_dict.values()

    def items(self):
        return self._cfg_dict.items()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Config):
            return self._cfg_dict == other._cfg_dict
        if isinstance(other, dict):
            return self._cfg_dict == other
        return NotImplemented

    def __repr__(self) -> str:
        return f"Config(filename={self._filename!r}, keys={list(self._cfg_dict)})"

    def __deepcopy__(self, memo: dict) -> "Config":
        return Config(copy.deepcopy(self._cfg_dict, memo), self._filename)

    def copy(self) -> "Config":
        """An independent deep copy (classes and functions are shared, not copied)."""
        return copy.deepcopy(self)

    def get(self, path: str, default: Any = None) -> Any:
        """Value at a dotted path such as ``"data.train.pipeline.2.img_scale"``, else ``default``."""
        return get_dotted(self._cfg_dict, path, default)

    def to_dict(self) -> dict:
        """The config as plain nested dicts/lists/tuples."""
        return self._cfg_dict.to_dict()

    # --- overrides ------------------------------------------------------------------------
    def merge_from_dotted(self, options: dict[str, Any], allow_new: bool = False) -> None:
        """Apply ``{"optimizer.lr": "0.01", "data.train.pipeline.2.img_scale": "(1333,800)"}``.

        String values are parsed with :func:`parse_option_value` (Python literals, ``a,b``
        lists); other values are used as they are. Unknown keys raise ConfigError with the
        nearest existing key, unless the parent has a ``type`` (a new constructor argument) or
        ``allow_new`` is true.
        """
        for path, raw in options.items():
            value = parse_option_value(raw) if isinstance(raw, str) else raw
            set_dotted(self._cfg_dict, path, _convert(value), allow_new=allow_new)

    # --- dump -----------------------------------------------------------------------------
    @property
    def pretty_text(self) -> str:
        """The config as a flat Python config file (what :meth:`dump` writes)."""
        header = "Resolved detzoo config" + (f" from {self._filename}" if self._filename else "")
        return config_to_source(self._cfg_dict, header=header)

    def dump(self, path: str | os.PathLike) -> Path:
        """Write :attr:`pretty_text` to ``path`` atomically (temp file + rename); return the path."""
        path = Path(path)
        text = self.pretty_text
        atomic_write_text(path, text)
        return path


def load_config(name_or_path: str | os.PathLike, options: dict[str, Any] | None = None) -> Config:
    """Load a config file, or a zoo config by name (see :func:`detzoo.zoo.resolve_config`).

    The file and its bases are executed fresh on every call; ``options`` are applied with
    :meth:`Config.merge_from_dotted`.
    """
    from detzoo.zoo.configs import resolve_config  # the zoo may later import the config package

    path = resolve_config(name_or_path)
    module = execute_config(path)
    values = {k: v for k, v in vars(module).items() if is_config_value(k, v)}
    cfg = Config(values, filename=path)
    if options:
        cfg.merge_from_dotted(options)
    return cfg


__all__ = ["Config", "ConfigDict", "load_config"]
