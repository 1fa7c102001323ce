"""Build objects from component dicts ``dict(type=SomeClass, **kwargs)``, children first."""
from __future__ import annotations

import difflib
import importlib
import inspect
from typing import Any, Callable

from detzoo.errors import ConfigError

#: Bare class name -> class, for configs that write ``type="ResNet"`` instead of the class.
REGISTRY: dict[str, Callable] = {}


def register(obj: Callable | None = None, *, name: str | None = None):
    """Add a class (or factory function) to :data:`REGISTRY` under its bare name.

    Usable as ``@register`` or ``register(cls, name="Alias")``. A name maps to exactly one
    object: registering a different object under a taken name is a ConfigError.
    """

    def add(target: Callable) -> Callable:
        key = name or target.__name__
        existing = REGISTRY.get(key)
        if existing is not None and existing is not target:
            raise ConfigError(
                f"registry name '{key}' already maps to {_qualified(existing)}; "
                f"cannot also map it to {_qualified(target)}"
            )
        REGISTRY[key] = target
        return target

    return add if obj is None else add(obj)


def resolve_type(type_value: Any, where: str = "type", strict: bool = True) -> Callable | None:
    """The callable a ``type`` entry stands for: itself, a registered name or ``"pkg.mod.Name"``.

    An unknown bare name is a ConfigError with the nearest registered name, or None when
    ``strict`` is false (see :func:`instantiate` on nested string types).
    """
    if isinstance(type_value, str):
        if type_value in REGISTRY:
            return REGISTRY[type_value]
        module_name, _, attr = type_value.rpartition(".")
        if module_name:
            try:
                return getattr(importlib.import_module(module_name), attr)
            except (ImportError, AttributeError):
                raise ConfigError(f"cannot import type '{type_value}' in '{where}'") from None
        if not strict:
            return None
        close = difflib.get_close_matches(type_value, list(REGISTRY), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f" ({len(REGISTRY)} names are registered)"
        raise ConfigError(f"unknown type '{type_value}' in '{where}'{hint}")
    if callable(type_value):
        return type_value
    raise ConfigError(f"'{where}' must be a class or a callable, got {type(type_value).__name__}")


def instantiate(cfg: Any, **extra_kwargs: Any) -> Any:
    """Build what ``cfg`` describes.

    A dict with ``type`` becomes ``type(**built_kwargs, **extra_kwargs)``, where every nested
    dict with ``type`` (inside dicts, lists and tuples) was built first. A dict without
    ``type`` becomes a plain dict of its built children; lists and tuples are mapped; other
    values are passed through. Wrong or missing constructor arguments raise ConfigError naming
    the class, the argument, the valid parameters and the nearest valid name.

    A *nested* dict whose ``type`` is a string that is neither registered nor a dotted import
    path is kept as a dict (``type`` included, children built): it is an MMDetection-style
    sub-config that its parent interprets itself, e.g. ``norm_cfg=dict(type="BN")``. At the top
    level such a string is a ConfigError naming the nearest registered name.
    """
    if hasattr(cfg, "to_dict") and not isinstance(cfg, dict):  # a Config
        cfg = dict(cfg.items())
    if extra_kwargs and not (isinstance(cfg, dict) and "type" in cfg):
        raise ConfigError(
            f"instantiate got extra arguments {sorted(extra_kwargs)} but the config has no 'type'"
        )
    return _build(cfg, "", extra_kwargs)


def _build(node: Any, path: str, extra: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        children = {
            k: _build(v, f"{path}.{k}" if path else str(k), {}) for k, v in node.items() if k != "type"
        }
        if "type" not in node:
            return children
        where = path or "<root>"
        fn = resolve_type(node["type"], f"{path}.type" if path else "type", strict=not path)
        if fn is None:  # a sub-config such as norm_cfg=dict(type="BN"): the parent reads it
            return {"type": node["type"], **children}
        clash = sorted(set(children) & set(extra))
        if clash:
            raise ConfigError(
                f"cannot build {_qualified(fn)} at '{where}': {clash} given both in the config "
                f"and as extra arguments"
            )
        kwargs = {**children, **extra}
        _check_arguments(fn, kwargs, where)
        try:
            return fn(**kwargs)
        except TypeError as exc:
            if _signature(fn) is not None:  # arguments were checked: a bug inside the constructor
                raise
            raise ConfigError(f"cannot build {_qualified(fn)} at '{where}': {exc}") from exc
    if type(node) is list:
        return [_build(v, f"{path}.{i}", {}) for i, v in enumerate(node)]
    if type(node) is tuple:
        return tuple(_build(v, f"{path}.{i}", {}) for i, v in enumerate(node))
    return node


def _signature(fn: Callable) -> inspect.Signature | None:
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):  # some builtins have no introspectable signature
        return None


def _check_arguments(fn: Callable, kwargs: dict[str, Any], where: str) -> None:
    sig = _signature(fn)
    if sig is None:
        return
    params = list(sig.parameters.values())
    named = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    accepts_any = any(p.kind == p.VAR_KEYWORD for p in params)
    valid = ", ".join(named) if named else "none"
    for key in kwargs:
        if key not in named and not accepts_any:
            close = difflib.get_close_matches(str(key), named, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"cannot build {_qualified(fn)} at '{where}': unexpected argument '{key}'{hint} "
                f"(valid parameters: {valid})"
            )
    for p in params:
        required = p.default is p.empty and p.kind in (
            p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY
        )
        if required and (p.name not in kwargs or p.kind == p.POSITIONAL_ONLY):
            raise ConfigError(
                f"cannot build {_qualified(fn)} at '{where}': missing required argument "
                f"'{p.name}' (valid parameters: {valid})"
            )


def _qualified(obj: Any) -> str:
    return getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or repr(obj)
