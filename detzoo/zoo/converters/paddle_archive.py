"""Reading PaddleDetection parameter archives without Paddle:
:func:`read_paddle_params` -> ``OrderedDict[name, np.ndarray]``.

- ``.tar`` (or an unpacked directory) of per-parameter files, as fluid ``save_persistables``
  wrote them and PaddleDetection 0.x shipped its model zoo. Each file holds one serialized
  LoDTensor (Paddle ``lod_tensor.cc`` ``SerializeToStream`` + ``tensor_util.cc``
  ``TensorToStream``), all little-endian::

      uint32 version (0) | uint64 lod_level | lod_level x (uint64 nbytes, nbytes of offsets)
      uint32 tensor version (0) | int32 desc_size | desc_size bytes of a TensorDesc protobuf
      (field 1: data_type enum, field 2: repeated int64 dims) | the raw data, C order

  The member's file name is the parameter name. Non-parameter members (``__model__``, the
  optimizer's ``*_velocity_*``/``*_moment*`` and ``learning_rate*`` variables) are skipped.
- ``.pdparams``: a pickle of ``{name: ndarray}`` (fluid 1.x ``fluid.save``) or, from
  ``paddle.save`` (2.x), ``{name: (tensor_name, ndarray)}`` tuples plus a
  ``StructuredToParameterName@@`` entry. It is read with an unpickler that only rebuilds numpy
  arrays and plain containers; a pickle naming anything else is refused unless
  ``allow_pickle=True`` (``--unsafe-load``), because unpickling can run code from the file.
"""
from __future__ import annotations

import os
import pickle
import re
import struct
import tarfile
from collections import OrderedDict
from typing import Mapping

import numpy as np

from detzoo.errors import CheckpointError
from detzoo.utils.safe_pickle import RestrictedUnpickler, numpy_array_globals

# paddle/fluid/framework/framework.proto VarType.Type -> numpy dtype
_PADDLE_DTYPES = {0: np.bool_, 1: np.int16, 2: np.int32, 3: np.int64, 4: np.float16, 5: np.float32,
                  6: np.float64, 19: np.uint64, 20: np.uint8, 21: np.int8}
# persistables that are not weights: optimizer state and schedule counters
_NOT_WEIGHTS = re.compile(r"(_velocity_\d+|_moment\d?_\d+|_beta\d_pow_acc_\d+|^learning_rate|"
                          r"@LR_DECAY_COUNTER@|^__model__$|^@)")


# --- LoDTensor files -----------------------------------------------------------------------
def _varint(buf: bytes, pos: int, where: str) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise CheckpointError(f"{where}: TensorDesc protobuf ends inside a number")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise CheckpointError(f"{where}: TensorDesc protobuf has a malformed number")


def _parse_tensor_desc(buf: bytes, where: str) -> tuple[int, list[int]]:
    """(data_type, dims) of a ``VarType.TensorDesc`` message (dims packed or not)."""
    data_type, dims, pos = None, [], 0
    while pos < len(buf):
        key, pos = _varint(buf, pos, where)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos, where)
            if field == 1:
                data_type = value
            elif field == 2:
                dims.append(value - (1 << 64) if value >= 1 << 63 else value)
        elif wire == 2:
            length, pos = _varint(buf, pos, where)
            chunk, pos = buf[pos:pos + length], pos + length
            if len(chunk) != length:
                raise CheckpointError(f"{where}: TensorDesc protobuf is truncated")
            if field == 2:  # packed dims
                inner = 0
                while inner < len(chunk):
                    value, inner = _varint(chunk, inner, where)
                    dims.append(value - (1 << 64) if value >= 1 << 63 else value)
        else:
            raise CheckpointError(f"{where}: TensorDesc protobuf has an unexpected field "
                                  f"(number {field}, wire type {wire})")
    if data_type is None:
        raise CheckpointError(f"{where}: TensorDesc has no data_type")
    return data_type, dims


def parse_lod_tensor(data: bytes, where: str) -> np.ndarray:
    """Decode one serialized LoDTensor (the layout in the module docstring).

    ``where`` names the file/archive member in errors. Raises CheckpointError on a wrong
    version, a truncated or over-long file, an unknown data type or negative dims.
    """
    def take(count: int, what: str) -> bytes:
        nonlocal pos
        if pos + count > len(data):
            raise CheckpointError(f"{where}: truncated LoDTensor file ({len(data)} bytes), ends "
                                  f"inside the {what}")
        chunk = data[pos:pos + count]
        pos += count
        return chunk

    pos = 0
    (version,) = struct.unpack("<I", take(4, "LoDTensor version"))
    if version != 0:
        raise CheckpointError(f"{where}: not a Paddle LoDTensor file (version {version}, expected 0)")
    (lod_level,) = struct.unpack("<Q", take(8, "LoD level count"))
    if lod_level > 16:
        raise CheckpointError(f"{where}: not a Paddle LoDTensor file (LoD level count {lod_level})")
    for _ in range(lod_level):
        (nbytes,) = struct.unpack("<Q", take(8, "LoD level size"))
        take(nbytes, "LoD offsets")
    (tensor_version,) = struct.unpack("<I", take(4, "tensor version"))
    if tensor_version != 0:
        raise CheckpointError(f"{where}: unsupported tensor version {tensor_version} (expected 0)")
    (desc_size,) = struct.unpack("<i", take(4, "TensorDesc size"))
    if desc_size < 0:
        raise CheckpointError(f"{where}: negative TensorDesc size {desc_size}")
    data_type, dims = _parse_tensor_desc(take(desc_size, "TensorDesc"), where)
    if data_type not in _PADDLE_DTYPES:
        raise CheckpointError(f"{where}: unsupported Paddle data type {data_type}")
    if any(d < 0 for d in dims):
        raise CheckpointError(f"{where}: negative dimension in shape {dims}")
    dtype = np.dtype(_PADDLE_DTYPES[data_type]).newbyteorder("<")
    count = int(np.prod(dims, dtype=np.int64)) if dims else 1
    raw = take(count * dtype.itemsize, f"tensor data (shape {dims}, {dtype.name})")
    if pos != len(data):
        raise CheckpointError(f"{where}: {len(data) - pos} unexpected bytes after the tensor data "
                              f"(shape {dims}, {dtype.name})")
    return np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("="), copy=True).reshape(dims)


def _read_tar(path: str) -> "OrderedDict[str, np.ndarray]":
    params: "OrderedDict[str, np.ndarray]" = OrderedDict()
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                if not member.isfile():
                    continue
                name = os.path.basename(member.name)
                if not name or name.startswith(".") or _NOT_WEIGHTS.search(name):
                    continue
                where = f"{path}: member {member.name}"
                if name in params:
                    raise CheckpointError(f"{where}: parameter {name!r} appears twice")
                handle = archive.extractfile(member)
                params[name] = parse_lod_tensor(handle.read() if handle else b"", where)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise CheckpointError(f"{path}: cannot read the tar archive ({type(exc).__name__}: {exc})") from None
    return params


def _read_dir(path: str) -> "OrderedDict[str, np.ndarray]":
    params: "OrderedDict[str, np.ndarray]" = OrderedDict()
    for name in sorted(os.listdir(path)):
        file = os.path.join(path, name)
        if not os.path.isfile(file) or name.startswith(".") or _NOT_WEIGHTS.search(name):
            continue
        with open(file, "rb") as f:
            params[name] = parse_lod_tensor(f.read(), file)
    return params


# --- .pdparams pickles ---------------------------------------------------------------------
def _allowed_globals() -> dict:
    allowed = numpy_array_globals()
    for builtins_name in ("builtins", "__builtin__"):
        allowed[(builtins_name, "tuple")] = tuple  # paddle.save stores a tensor as (name, array)
        allowed[(builtins_name, "eval")] = _data_only_eval
    allowed[("collections", "OrderedDict")] = OrderedDict
    return allowed


def _data_only_eval(expression, namespace=None, *_):
    """paddle.save pickles a LoDTensor as ``eval('data', {'data': array})``: allow that form only."""
    if expression == "data" and isinstance(namespace, dict) and isinstance(namespace.get("data"), np.ndarray):
        return namespace["data"]
    raise pickle.UnpicklingError(f"builtins.eval({expression!r}, ...) beyond paddle.save's "
                                 "('data', {'data': array}) form")


def _unpack_value(name: str, value, where: str) -> np.ndarray | None:
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], np.ndarray):
        value = value[1]  # paddle.save: (tensor name, array)
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "numpy") and callable(value.numpy):  # a real Paddle tensor (unsafe load)
        return np.asarray(value.numpy())
    return None


def _read_pdparams(path: str, allow_pickle: bool) -> "OrderedDict[str, np.ndarray]":
    try:
        with open(path, "rb") as f:
            if allow_pickle:
                raw = pickle.load(f, encoding="latin1")  # noqa: S301 - explicit --unsafe-load
            else:
                raw = RestrictedUnpickler(f, lambda module, name: CheckpointError(
                    f"{path}: the pickle names '{module}.{name}', not only numpy arrays; unpickling "
                    "such objects can run arbitrary code from the file, so detzoo refuses it. If you "
                    "trust where the file came from, pass --unsafe-load (allow_pickle=True)"),
                    allowed=_allowed_globals(), encoding="latin1").load()
    except CheckpointError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, ImportError, struct.error, MemoryError) as exc:
        raise CheckpointError(f"{path}: not a readable .pdparams pickle ({type(exc).__name__}: "
                              f"{exc})") from None
    if not isinstance(raw, Mapping):
        raise CheckpointError(f"{path}: a .pdparams file holds a dict of parameters, found "
                              f"{type(raw).__name__}")
    big = raw.get("UnpackBigParamInfor@@") or {}
    params: "OrderedDict[str, np.ndarray]" = OrderedDict()
    for name, value in raw.items():
        if not isinstance(name, str) or name.endswith("@@") or _NOT_WEIGHTS.search(name):
            continue
        if any(name.startswith(f"{key}@@.") for key in big):
            continue  # a slice of a big parameter: joined below
        array = _unpack_value(name, value, path)
        if array is None:
            raise CheckpointError(f"{path}: entry {name!r} is a {type(value).__name__}, not an array")
        params[name] = array
    for key, info in big.items():  # paddle.save splits parameters over 4 GB for protocol < 4
        try:
            pieces = [_unpack_value(s, raw[s], path) for s in info["slices"]]
            params[key] = np.concatenate([p.ravel() for p in pieces]).reshape(info["OriginShape"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CheckpointError(f"{path}: big parameter {key!r} cannot be re-assembled "
                                  f"({type(exc).__name__}: {exc})") from None
    return params


def read_paddle_params(path: str | os.PathLike, allow_pickle: bool = False) -> "OrderedDict[str, np.ndarray]":
    """All weights of a Paddle archive: ``.tar`` / directory of LoDTensor files or ``.pdparams``.

    ``.pdopt`` (optimizer) files are refused with a hint. Raises CheckpointError naming the
    file (and archive member) on anything malformed.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointError(f"{path}: file not found")
    if os.path.isdir(path):
        params = _read_dir(path)
    elif path.endswith(".pdopt"):
        raise CheckpointError(f"{path}: is Paddle optimizer state; convert the .pdparams file beside it")
    elif tarfile.is_tarfile(path):
        params = _read_tar(path)
    elif path.endswith((".tar", ".tar.gz", ".tgz")):
        raise CheckpointError(f"{path}: not a readable tar archive (truncated or corrupt download?)")
    else:
        params = _read_pdparams(path, allow_pickle)
    if not params:
        raise CheckpointError(f"{path}: holds no Paddle parameters")
    return params
