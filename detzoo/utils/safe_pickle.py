"""Unpickling that can only rebuild numpy arrays (and what a caller adds explicitly).

A pickle names the globals it needs and ``pickle.load`` imports and calls them, so loading a
file can run arbitrary code. :class:`RestrictedUnpickler` resolves only the globals of an
allow-list and refuses every other one before anything is imported. Used for proposal files
(MMDetection result pickles) and PaddleDetection ``.pdparams`` archives.
"""
from __future__ import annotations

import codecs
import importlib
import pickle
from typing import Any, Callable, Mapping

import numpy as np


def _numpy_attr(name: str):
    """A numpy internal by the name numpy 2 uses (``numpy._core``) or numpy 1 (``numpy.core``)."""
    for module in ("numpy._core.multiarray", "numpy.core.multiarray", "numpy._core.numeric",
                   "numpy.core.numeric"):
        try:
            value = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if value is not None:
            return value
    raise ImportError(f"numpy has no internal '{name}'")


def _latin1_encode(text, encoding="latin1", errors="strict"):
    # protocol-2 pickles written by Python 3 store bytes as _codecs.encode(str, 'latin1');
    # other codecs are never needed for arrays
    if encoding.replace("-", "").replace("_", "").lower() != "latin1":
        raise pickle.UnpicklingError(f"_codecs.encode with codec {encoding!r}")
    return codecs.encode(text, "latin1", errors)


def numpy_array_globals() -> dict[tuple[str, str], Any]:
    """(module, name) -> object for everything a pickle of numpy arrays needs (numpy 1.x and
    2.x files, protocols 2 to 5)."""
    reconstruct, frombuffer = _numpy_attr("_reconstruct"), _numpy_attr("_frombuffer")
    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
                                           ("_codecs", "encode"): _latin1_encode}
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{core}.numeric", "_frombuffer")] = frombuffer  # protocol 5
    for builtins_name in ("builtins", "__builtin__"):  # protocol 2 names it __builtin__
        allowed[(builtins_name, "bytes")] = bytes
        allowed[(builtins_name, "bytearray")] = bytearray
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals in ``allowed`` (default: :func:`numpy_array_globals`); any other
    raises ``refuse(module, name)``, the caller's exception naming the file and what to do."""

    def __init__(self, file, refuse: Callable[[str, str], Exception],
                 allowed: Mapping[tuple[str, str], Any] | None = None, encoding: str = "ASCII"):
        super().__init__(file, encoding=encoding)
        self.refuse = refuse
        self.allowed = numpy_array_globals() if allowed is None else allowed

    def find_class(self, module: str, name: str):
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise self.refuse(module, name) from None
