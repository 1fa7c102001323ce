"""Write a resolved config back as a readable Python config file.

The text is a flat config (no base imports): the classes and functions it references become
``from module import Name`` lines (aliased on name clashes), then one assignment per top-level
key, pretty-printed with 4-space indentation. Loading the text gives back an equal config:
tuples stay tuples, numpy scalars become Python numbers.
"""
from __future__ import annotations

import enum
import importlib
import keyword
import math
import types
from typing import Any

import numpy as np

from detzoo.errors import ConfigError

LINE_WIDTH = 88
_INDENT = "    "


def config_to_source(cfg: dict, header: str = "") -> str:
    """Python source of the top-level ``cfg`` (``name -> value``) that recreates it."""
    for name in cfg:
        if not (isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name)):
            raise ConfigError(f"cannot dump config: top-level key {name!r} is not a Python identifier")
        if name.startswith("_"):
            raise ConfigError(
                f"cannot dump config: top-level key '{name}' starts with '_' and would be dropped on load"
            )
    writer = _SourceWriter(reserved=set(cfg))
    body = [f"{name} = {writer.render(value, 0, len(name) + 3, name)}" for name, value in cfg.items()]
    parts = [f"# {line}" for line in header.splitlines()] if header else []
    imports = writer.import_lines()
    if imports:
        parts.append("\n".join(imports))
    parts.append("\n\n".join(body))
    return "\n\n".join(parts) + "\n"


class _SourceWriter:
    def __init__(self, reserved: set[str]) -> None:
        # `dict(...)` and `float('inf')` appear in the text, so imports must not shadow them.
        self._taken: dict[str, tuple[str, str]] = {n: ("", n) for n in reserved}
        self._taken.update({n: ("builtins", n) for n in ("dict", "float")})
        self._refs: dict[tuple[str, str], str] = {}
        self._from_imports: dict[str, list[str]] = {}  # module -> ["Name", "Name as Alias"]
        self._plain_imports: set[str] = set()

    def import_lines(self) -> list[str]:
        lines = [f"import {m}" for m in sorted(self._plain_imports)]
        for module in sorted(self._from_imports):
            names = sorted(self._from_imports[module])
            line = f"from {module} import {', '.join(names)}"
            if len(line) > LINE_WIDTH:
                line = f"from {module} import (\n" + "".join(f"{_INDENT}{n},\n" for n in names) + ")"
            lines.append(line)
        return lines

    # --- references to importable objects -------------------------------------------------
    def _reference(self, obj: Any, path: str) -> str:
        """Expression naming the class / function ``obj``, adding the import it needs."""
        module = getattr(obj, "__module__", None)
        qualname = getattr(obj, "__qualname__", None)
        if not module or not qualname or "<locals>" in qualname or module == "__main__":
            raise ConfigError(f"cannot dump config key '{path}': {obj!r} is not importable by name")
        if _lookup(module, qualname) is not obj:
            raise ConfigError(
                f"cannot dump config key '{path}': {obj!r} is not reachable as {module}.{qualname}"
            )
        head, _, rest = qualname.partition(".")
        key = (module, head)
        if module == "builtins" and self._taken.setdefault(head, key) == key:
            return qualname  # a builtin needs no import; the name is now taken
        if key not in self._refs:
            alias, n = head, 0
            while alias in self._taken or keyword.iskeyword(alias):
                n += 1
                alias = f"{head}_{n}"
            self._taken[alias] = key
            self._refs[key] = alias
            suffix = "" if alias == head else f" as {alias}"
            self._from_imports.setdefault(module, []).append(f"{head}{suffix}")
        return self._refs[key] + (f".{rest}" if rest else "")

    # --- values -----------------------------------------------------------------------------
    def render(self, value: Any, level: int, prefix: int, path: str) -> str:
        """``value`` as source; one line if it fits after ``prefix`` chars at ``level``."""
        inline = self._inline(value, path)
        if len(_INDENT) * level + prefix + len(inline) + 1 <= LINE_WIDTH:
            return inline
        pad, close = _INDENT * (level + 1), _INDENT * level
        if isinstance(value, dict) and value:
            if _keyword_keys(value):
                lines = [f"{pad}{k}={self.render(v, level + 1, len(k) + 2, f'{path}.{k}')},"
                         for k, v in value.items()]
                return "dict(\n" + "\n".join(lines) + f"\n{close})"
            lines = []
            for k, v in value.items():
                key = self._inline(k, path)
                lines.append(f"{pad}{key}: {self.render(v, level + 1, len(key) + 3, f'{path}.{k}')},")
            return "{\n" + "\n".join(lines) + f"\n{close}}}"
        if isinstance(value, (list, tuple)) and value and _plain_sequence(value):
            open_, end = ("[", "]") if isinstance(value, list) else ("(", ")")
            if not any(isinstance(v, (dict, list, tuple, set, frozenset)) for v in value):
                lines = _fill([self._inline(v, f"{path}.{i}") + "," for i, v in enumerate(value)], pad)
            else:
                lines = [f"{pad}{self.render(v, level + 1, 1, f'{path}.{i}')},"
                         for i, v in enumerate(value)]
            return open_ + "\n" + "\n".join(lines) + f"\n{close}{end}"
        return inline

    def _inline(self, value: Any, path: str) -> str:
        if isinstance(value, np.generic):
            value = value.item()
        if value is None or isinstance(value, (bool, int, str, bytes, complex)):
            return repr(value)
        if isinstance(value, float):
            if math.isnan(value):
                return "float('nan')"
            if math.isinf(value):
                return "float('inf')" if value > 0 else "-float('inf')"
            return repr(value)
        if isinstance(value, dict):
            if _keyword_keys(value):
                items = ", ".join(f"{k}={self._inline(v, f'{path}.{k}')}" for k, v in value.items())
                return f"dict({items})"
            items = ", ".join(
                f"{self._inline(k, path)}: {self._inline(v, f'{path}.{k}')}" for k, v in value.items()
            )
            return "{" + items + "}"
        if isinstance(value, (list, tuple)) and _plain_sequence(value):
            items = [self._inline(v, f"{path}.{i}") for i, v in enumerate(value)]
            if isinstance(value, list):
                return "[" + ", ".join(items) + "]"
            return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
        if isinstance(value, (set, frozenset)):
            items = sorted(self._inline(v, path) for v in value)
            if isinstance(value, frozenset):
                return "frozenset({" + ", ".join(items) + "})" if items else "frozenset()"
            return "{" + ", ".join(items) + "}" if items else "set()"
        if isinstance(value, enum.Enum):
            return f"{self._reference(type(value), path)}.{value.name}"
        if isinstance(value, (type, types.FunctionType, types.BuiltinFunctionType)):
            return self._reference(value, path)
        if type(value).__module__ == "torch" and type(value).__name__ == "dtype":
            if self._taken.setdefault("torch", ("torch", "")) != ("torch", ""):
                raise ConfigError(f"cannot dump config key '{path}': the name 'torch' is taken")
            self._plain_imports.add("torch")
            return repr(value)  # e.g. torch.float32
        raise ConfigError(
            f"cannot dump config key '{path}': values of type {type(value).__name__} "
            f"have no Python literal form (use numbers, strings, lists, tuples, dicts or classes)"
        )


def _fill(items: list[str], pad: str) -> list[str]:
    """Pack short items (numbers, strings) into lines of at most LINE_WIDTH characters."""
    lines = [pad]
    for item in items:
        if lines[-1] != pad and len(lines[-1]) + 1 + len(item) > LINE_WIDTH:
            lines.append(pad)
        lines[-1] += item if lines[-1] == pad else " " + item
    return lines


def _keyword_keys(d: dict) -> bool:
    return all(isinstance(k, str) and k.isidentifier() and not keyword.iskeyword(k) for k in d)


def _plain_sequence(value: Any) -> bool:
    return type(value) in (list, tuple) or isinstance(value, list)


def _lookup(module: str, qualname: str) -> Any:
    try:
        obj = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        return obj
    except (ImportError, AttributeError):
        return None
