"""Execute a Python config file whose relative imports resolve to other files of the config tree.

A config is ordinary Python. Inheritance is a relative import of another config file
(``from .._base_.models.faster_rcnn_r50_fpn import model``); absolute imports (``detzoo``,
``torch``, ...) go through the normal import machinery.

Relative imports never touch ``sys.modules``: every call of :func:`execute_config` starts an
empty cache, so each load re-executes the bases and a config may mutate what it imported
without affecting any other load. Within one load a base file is executed once and shared,
exactly like a Python module, so ``from .base import a`` and a later ``from .base import b``
see the same objects.
"""
from __future__ import annotations

import builtins
import difflib
import sys
import types
from pathlib import Path

from detzoo.errors import ConfigError


def is_config_value(name: str, value: object) -> bool:
    """Whether a top-level name of a config file belongs to the config.

    Helpers are left out: private names (``_x``), and imported modules, classes and functions
    (classes used as ``type=`` inside dicts are values and stay).
    """
    if name.startswith("_"):
        return False
    return not isinstance(
        value, (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType)
    )


def execute_config(path: Path) -> types.ModuleType:
    """Execute the config file ``path`` and its bases fresh; return its module namespace."""
    return _TreeLoader().load(Path(path).resolve())


def _error_line(exc: BaseException, path: Path) -> int | None:
    """Line of the innermost traceback frame that belongs to ``path`` (None if none does)."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == str(path):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


class _TreeLoader:
    """One load: the cache of executed files and the stack used to detect import cycles."""

    def __init__(self) -> None:
        self._modules: dict[Path, types.ModuleType] = {}
        self._executing: list[Path] = []
        self._builtins = dict(vars(builtins))
        self._builtins["__import__"] = self._import

    def load(self, path: Path, package: bool = False) -> types.ModuleType:
        """Execute ``path`` (a .py file, or a folder acting as a package) once per load."""
        if path in self._modules:
            return self._modules[path]
        if path in self._executing:
            cycle = " -> ".join(str(p) for p in self._executing[self._executing.index(path):])
            raise ConfigError(f"circular config import: {cycle} -> {path}")
        module = types.ModuleType(f"detzoo_config.{path.stem}")
        module.__file__ = str(path)
        module.__builtins__ = self._builtins
        if package:
            module.__path__ = [str(path)]
            init = path / "__init__.py"
            module.__file__ = str(init)
            if init.is_file():
                self._exec_file(init, module)
        else:
            self._exec_file(path, module)
        if "__all__" not in vars(module):
            # `from base import *` exports the config values only, not helper imports.
            module.__all__ = [k for k, v in vars(module).items() if is_config_value(k, v)]
        self._modules[path] = module
        return module

    def _exec_file(self, path: Path, module: types.ModuleType) -> None:
        try:
            source = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from None
        try:
            code = compile(source, str(path), "exec", dont_inherit=True)
        except SyntaxError as exc:
            raise ConfigError(f"syntax error in config {path}, line {exc.lineno}: {exc.msg}") from None
        self._executing.append(path)
        try:
            exec(code, vars(module))
        except ConfigError:
            raise
        except Exception as exc:
            line = _error_line(exc, path)
            where = f"{path}, line {line}" if line is not None else str(path)
            message = str(exc).splitlines()[0] if str(exc) else ""
            raise ConfigError(f"error in config {where}: {type(exc).__name__}: {message}") from exc
        finally:
            self._executing.pop()

    def _import(self, name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0:
            return builtins.__import__(name, globals, locals, fromlist, level)
        importer = Path((globals or {}).get("__file__", "<unknown>"))
        caller = sys._getframe(1)
        line = caller.f_lineno if caller.f_code.co_filename == str(importer) else None
        where = f"{importer}, line {line}" if line is not None else str(importer)
        statement = "." * level + name

        base = importer.parent
        for _ in range(level - 1):
            base = base.parent
        if name:
            target = base.joinpath(*name.split("."))
            module = self._load_target(target, where, statement)
        else:  # `from . import x`: the folder itself is the package
            target = base
            module = self.load(base.resolve(), package=True)
        for attr in fromlist or ():
            if attr == "*" or hasattr(module, attr):
                continue
            if hasattr(module, "__path__"):  # `from . import sibling`: load the submodule
                setattr(module, attr, self._load_target(target / attr, where, statement))
                continue
            exported = [k for k in vars(module) if not k.startswith("__")]
            close = difflib.get_close_matches(attr, exported, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"config {where}: cannot import '{attr}' from '{statement}' ({module.__file__}){hint}"
            )
        return module

    def _load_target(self, target: Path, where: str, statement: str) -> types.ModuleType:
        py_file = target.with_name(target.name + ".py")
        if py_file.is_file():
            return self.load(py_file.resolve())
        if target.is_dir():
            return self.load(target.resolve(), package=True)
        raise ConfigError(
            f"config {where} imports '{statement}' but {py_file} does not exist"
        )
