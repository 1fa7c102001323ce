"""Checkpoint converters: other frameworks' files -> detzoo checkpoints (``detzoo convert``).

:func:`convert_file` reads ``src`` in the layout of ``source`` and returns a detzoo checkpoint
dict ``{"state_dict": OrderedDict[str, Tensor], "meta": dict}`` (save it with
:func:`detzoo.engine.checkpoint.atomic_torch_save`; ``load_model_weights`` then loads it
strictly into the model of the config named in ``meta["config"]``).

Sources and their modules:

- ``mmdet`` (:mod:`.mmdet`) and ``torchvision`` (:mod:`.torchvision`): a PyTorch file read
  with ``weights_only`` unless ``allow_pickle``; the module's ``convert(checkpoint: Mapping,
  arch: str | None = None) -> dict`` gets the (``module.``-stripped) state dict and returns the
  checkpoint dict.
- ``paddle``: a PaddleDetection archive (``.tar`` of LoDTensor files, a directory of them, or
  ``.pdparams``) read by :func:`.paddle.read_paddle_params` into ``{name: np.ndarray}``, then
  mapped by a Paddle mapping module. Each mapping module (:mod:`.paddle` for the R-CNN and
  RetinaNet rows, :mod:`.paddle_single_stage` for YOLOv3 / SSD / SENet rows) exposes::

      ARCHS: dict[str, Callable[[Mapping[str, np.ndarray]], OrderedDict[str, torch.Tensor]]]
      detect_arch(names: Iterable[str]) -> str | None       # optional: guess from the names
      detect_arch_with_shapes(params) -> str | None         # optional, preferred: names + shapes
      ARCH_CONFIGS: dict[str, str]                          # optional: arch -> config path

  A mapping function raises :class:`~detzoo.errors.CheckpointError` naming the missing or
  left-over Paddle parameter. Without ``arch`` the modules' ``detect_arch`` are asked in turn.
"""
from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any

from detzoo.errors import CheckpointError

SOURCES = ("mmdet", "torchvision", "paddle")
#: model-zoo ``source`` whose published files detzoo converts on load -> (the :func:`convert_file`
#: source, the file-name endings it reads). Used for the index's ``loadable`` status and by
#: :func:`detzoo.zoo.hub.resolve_zoo_checkpoint` (converted once, cached as ``<stem>.detzoo.pth``).
ZOO_CONVERTERS = {
    "PaddleDetection": ("paddle", (".tar", ".pdparams")),
    "torchvision": ("torchvision", (".pth", ".pt")),
}
# Paddle mapping modules, asked in this order (a module not written yet is skipped)
PADDLE_MODULES = ("detzoo.zoo.converters.paddle", "detzoo.zoo.converters.paddle_single_stage")


def _paddle_modules() -> list[ModuleType]:
    modules = []
    for name in PADDLE_MODULES:
        try:
            modules.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    return modules


def paddle_archs() -> dict[str, ModuleType]:
    """Every Paddle architecture name -> the module mapping it."""
    return {arch: module for module in _paddle_modules() for arch in getattr(module, "ARCHS", {})}


def _convert_paddle(src: str, arch: str | None, allow_pickle: bool) -> dict:
    from . import paddle as paddle_rcnn

    params = paddle_rcnn.read_paddle_params(src, allow_pickle=allow_pickle)
    modules = paddle_archs()
    if not arch or arch == "auto":
        for module in _paddle_modules():
            by_shapes = getattr(module, "detect_arch_with_shapes", None)
            by_names = getattr(module, "detect_arch", None)
            arch = (by_shapes(params) if by_shapes else by_names(params.keys()) if by_names else None)
            if arch:
                break
        if not arch:
            raise CheckpointError(f"{src}: cannot tell the architecture from its {len(params)} "
                                  f"parameter names; pass --arch (one of {', '.join(sorted(modules))})")
    if arch not in modules:
        raise CheckpointError(f"--arch {arch!r} is not a Paddle architecture detzoo converts; known: "
                              f"{', '.join(sorted(modules))}")
    module = modules[arch]
    try:
        state_dict = (module.ARCHS[arch](params, source=src) if module is paddle_rcnn
                      else module.ARCHS[arch](params))
    except CheckpointError as exc:
        message = str(exc)
        raise CheckpointError(message if src in message else f"{src}: {message}") from None
    meta: dict[str, Any] = {"converted_from": "paddle", "paddle_arch": arch,
                            "source_file": os.path.basename(os.fspath(src))}
    if module is paddle_rcnn:
        meta["backbone"] = paddle_rcnn.describe_backbone(params)
    config = getattr(module, "ARCH_CONFIGS", {}).get(arch)
    if config:
        meta["config"] = config
    return {"state_dict": state_dict, "meta": meta}


def convert_file(src: str | os.PathLike, source: str, arch: str | None = None,
                 allow_pickle: bool = False) -> dict:
    """Read ``src`` written by ``source`` (one of :data:`SOURCES`) -> ``{"state_dict", "meta"}``.

    ``arch`` picks the mapping where a source has several (Paddle: ``faster_rcnn_fpn``,
    ``mask_rcnn_fpn``, ``cascade_rcnn_fpn``, ``retinanet``, ...; mmdet: ``rpn``); None guesses.
    ``allow_pickle`` permits arbitrary unpickling (trusted files only). Raises CheckpointError.
    """
    src = os.fspath(src)
    if source not in SOURCES:
        raise CheckpointError(f"unknown checkpoint source {source!r}; one of {', '.join(SOURCES)}")
    if not os.path.exists(src):
        raise CheckpointError(f"{src}: file not found")
    if source == "paddle":
        return _convert_paddle(src, arch, allow_pickle)
    from detzoo.engine.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(src, weights_only=not allow_pickle)
    module = importlib.import_module(f"detzoo.zoo.converters.{source}")
    try:
        if source == "mmdet":
            converted = module.convert(checkpoint, arch=arch)
        else:
            converted = module.convert(checkpoint["state_dict"], arch=arch)
    except CheckpointError as exc:
        raise CheckpointError(f"checkpoint {src}: {exc}") from None
    converted.setdefault("meta", {})
    converted["meta"].setdefault("source_file", os.path.basename(src))
    return converted


__all__ = ["SOURCES", "ZOO_CONVERTERS", "convert_file", "paddle_archs"]
