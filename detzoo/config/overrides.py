"""Dotted-path access and command-line overrides (MMDetection's ``--cfg-options`` convention).

``a.b=1`` sets ``cfg["a"]["b"] = 1``; integers in a path index lists
(``data.train.pipeline.2.img_scale=(1333,800)``). Values are parsed as Python literals where
possible, ``x,y,z`` becomes a list whose items are parsed one by one, anything else stays a
string.
"""
from __future__ import annotations

import ast
import difflib
import inspect
from typing import Any, Iterator

from detzoo.config.build import REGISTRY
from detzoo.errors import ConfigError

_MISSING = object()
_CLOSING = {"[": "]", "(": ")", "{": "}"}
_KEYWORDS = {"true": True, "false": False, "none": None}


def parse_cli_options(options: list[str]) -> dict[str, str]:
    """``["a.b=1", "c=x,y"]`` -> ``{"a.b": "1", "c": "x,y"}``.

    Values stay strings: :meth:`Config.merge_from_dotted` parses them (see
    :func:`parse_option_value`), so a quoted ``'1'`` keeps meaning the string ``"1"``.
    """
    parsed: dict[str, str] = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"bad config option '{option}': expected key=value, e.g. optimizer.lr=0.01")
        parsed[key.strip()] = value
    return parsed


def _split_top_level(text: str) -> list[str]:
    """Split at commas that are outside brackets and quotes."""
    parts, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote and text[i - 1] != "\\":
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def parse_option_value(text: str) -> Any:
    """Parse one override value: a Python literal, a comma list, or else the string itself.

    ``"1"`` -> 1, ``"1e-3"`` -> 0.001, ``"True"``/``"true"`` -> True, ``"None"`` -> None,
    ``"'1'"`` -> "1", ``"(1333,800)"`` -> (1333, 800), ``"a,b"`` -> ["a", "b"],
    ``"[person,car]"`` -> ["person", "car"], ``"bbox"`` -> "bbox".
    """
    text = text.strip()
    parts = _split_top_level(text)
    if len(parts) > 1:
        if parts[-1].strip() == "":  # trailing comma: `a,` is a one-item list
            parts = parts[:-1]
        return [parse_option_value(p) for p in parts]
    try:
        return ast.literal_eval(text)
    except Exception:
        pass
    if text.lower() in _KEYWORDS:
        return _KEYWORDS[text.lower()]
    if len(text) >= 2 and text[0] in "[(" and text[-1] == _CLOSING[text[0]]:
        # a bracketed sequence with bare words, e.g. [person,car]
        inner = text[1:-1]
        items = _split_top_level(inner)
        if items[-1].strip() == "":
            items = items[:-1]
        values = [parse_option_value(p) for p in items]
        if text[0] == "[":
            return values
        return tuple(values) if len(values) != 1 or inner.rstrip().endswith(",") else values[0]
    return text


def iter_paths(node: Any, prefix: str = "") -> Iterator[str]:
    """All dotted paths inside ``node`` (dict keys and list indices), parents before children."""
    if isinstance(node, dict):
        children = ((str(k), v) for k, v in node.items())
    elif isinstance(node, (list, tuple)):
        children = ((str(i), v) for i, v in enumerate(node))
    else:
        return
    for key, value in children:
        path = f"{prefix}.{key}" if prefix else key
        yield path
        yield from iter_paths(value, path)


def suggest_path(root: Any, wanted: str, extra: list[str] | tuple = ()) -> str:
    """``"; did you mean 'x.y'?"`` for the path (existing, or in ``extra``) nearest to ``wanted``."""
    depth = wanted.count(".")
    candidates = list(iter_paths(root)) + list(extra)
    # Prefer paths of the same depth: a typo rarely changes the number of components.
    for pool in ([p for p in candidates if p.count(".") == depth], candidates):
        close = difflib.get_close_matches(wanted, pool, n=1, cutoff=0.6)
        if close:
            return f"; did you mean '{close[0]}'?"
    return ""


def _child(node: Any, key: str) -> Any:
    """``node[key]`` for a dict (string key, or integer key written as digits) or a sequence."""
    if isinstance(node, dict):
        if key in node:
            return node[key]
        if key.lstrip("-").isdigit() and int(key) in node:
            return node[int(key)]
        return _MISSING
    if isinstance(node, (list, tuple)):
        try:
            return node[int(key)]
        except (ValueError, IndexError):
            return _MISSING
    return _MISSING


def _component_params(node: dict) -> list[str] | None:
    """Argument names the ``type`` of a component dict accepts; None if unknown or ``**kwargs``."""
    fn = node.get("type")
    if isinstance(fn, str):
        fn = REGISTRY.get(fn)
    if fn is None or not callable(fn):
        return None
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    if any(p.kind == p.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _may_add_argument(node: dict, key: str, last: bool) -> bool:
    """A component dict may take a new constructor argument, as the last path component only
    (``model.nek.0.x`` is far more likely a typo than a new subtree) and only a name its
    ``type`` accepts when that is known (so ``optimizer.lrr`` is still caught)."""
    if not (last and "type" in node):
        return False
    params = _component_params(node)
    return params is None or key in params


def get_dotted(root: Any, path: str, default: Any = None) -> Any:
    """Value at the dotted ``path`` (list indices allowed), or ``default`` if absent."""
    node = root
    for key in path.split("."):
        node = _child(node, key)
        if node is _MISSING:
            return default
    return node


def set_dotted(root: dict, path: str, value: Any, allow_new: bool = False) -> None:
    """Set ``root[a][b]... = value`` in place for ``path = "a.b..."``.

    A key that does not exist is an error with the nearest existing path as suggestion, unless
    it is the last component and its parent is a component dict (has ``type``) whose type
    accepts that argument name (or ``**kwargs``, or cannot be inspected), or ``allow_new`` is
    true (missing dicts on the way are then created).
    Tuples on the way are rebuilt with the new item.
    """
    keys = path.split(".")
    if not all(keys):
        raise ConfigError(f"bad config key '{path}': empty component")
    _assign(root, root, keys, 0, value, allow_new, path)


def _assign(root, node, keys, i, value, allow_new, path):
    key, last = keys[i], i == len(keys) - 1
    here = ".".join(keys[: i + 1])
    if isinstance(node, dict):
        if key not in node and key.lstrip("-").isdigit() and int(key) in node:
            key = int(key)
        if key not in node:
            if not (allow_new or _may_add_argument(node, key, last)):
                parent = ".".join(keys[:i])
                params = _component_params(node) or []
                extra = [f"{parent}.{p}" if parent else p for p in params]
                raise ConfigError(f"unknown config key '{path}'{suggest_path(root, path, extra)}")
            if not last:
                node[key] = type(node)()
        node[key] = value if last else _assign(root, node[key], keys, i + 1, value, allow_new, path)
        return node
    if isinstance(node, (list, tuple)):
        try:
            index = int(key)
            node[index]
        except (ValueError, IndexError):
            raise ConfigError(
                f"bad config key '{path}': '{here}' is not an index of a list of length {len(node)}"
            ) from None
        item = value if last else _assign(root, node[index], keys, i + 1, value, allow_new, path)
        if isinstance(node, list):
            node[index] = item
            return node
        items = list(node)  # a tuple: rebuild it with the new item
        items[index] = item
        return type(node)(items) if type(node) is tuple else type(node)(*items)
    parent = ".".join(keys[:i])
    raise ConfigError(
        f"cannot set config key '{path}': '{parent}' holds a value of type "
        f"{type(node).__name__}, not a dict or list"
    )
