"""Loading ImageNet (or any) weights into a backbone: one rule for every backbone's ``init_cfg``.

``init_cfg=dict(type="Pretrained", checkpoint=X[, prefix=P])`` where X is

* a local file (read as is);
* a model-zoo name: an ImageNet row or its alias as MMDetection configs write them
  (``torchvision://resnet50``, ``open-mmlab://regnetx_3.2gf``,
  ``open-mmlab://detectron2/resnet50_caffe``), a checkpoint file name or stem
  (``resnet50-19c8e357``), or any zoo row name (with ``prefix="backbone."`` for a detector);
* an ``http(s)://`` URL.

Names are resolved with :func:`detzoo.zoo.index.find_entries`, downloaded once into the cache
(``$DETZOO_HOME/checkpoints``, sha256-checked by :mod:`detzoo.zoo.hub`) and read from there; a
file already in the cache is used offline. PaddlePaddle archives (``.tar`` / ``.pdparams``, e.g.
``SENet154_vd_pretrained``) are read with :mod:`detzoo.zoo.converters.paddle` and renamed by the
backbone's Paddle mapping (:data:`detzoo.zoo.converters.paddle_single_stage.BACKBONE_MAPPERS`).

Training (:func:`load_pretrained_weights`, called by ``detzoo.apis.train.train_from_config``)
loads every submodule's ``Pretrained`` ``init_cfg`` once the model is built, as MMDetection's
train script does with ``model.init_weights()``; nothing else is re-initialised.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Mapping, Optional

import torch
import torch.nn as nn

from detzoo.errors import CheckpointError, ConfigError, DetzooError

_PADDLE_SUFFIXES = (".tar", ".pdparams", ".tar.gz")


def _is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def _looks_like_path(text: str) -> bool:
    return (os.sep in text or "/" in text) and "://" not in text or text.startswith(("~", "."))


def resolve_pretrained(checkpoint: str, progress: bool = True) -> Path:
    """The local file for ``checkpoint`` (a path, a zoo name / alias / checkpoint stem, or a
    URL), downloading it into the cache when needed. Raises CheckpointError: not found, unknown
    name (with the nearest zoo names), or a download that failed (naming the URL, the cache
    folder and how to place the file there by hand)."""
    from detzoo.zoo import hub

    checkpoint = os.fspath(checkpoint)
    if os.path.isfile(os.path.expanduser(checkpoint)):
        return Path(os.path.expanduser(checkpoint))
    if _is_url(checkpoint):
        return _download(checkpoint, None, checkpoint)
    if _looks_like_path(checkpoint):
        raise CheckpointError(f"{checkpoint}: pretrained backbone checkpoint not found")
    from detzoo.zoo.index import find_entries

    try:
        entries = [e for e in find_entries(checkpoint) if e.weights]
    except ConfigError as exc:
        raise CheckpointError(f"pretrained checkpoint '{checkpoint}' not found: neither a file nor a "
                              f"model-zoo name ({exc})") from None
    if not entries:
        raise CheckpointError(f"model-zoo entry '{checkpoint}' has no published weights to load")
    if len({e.weights for e in entries}) > 1:
        names = ", ".join(e.name for e in entries)
        raise CheckpointError(f"pretrained checkpoint '{checkpoint}' names several files ({names}); give one row name")
    entry = entries[0]
    cached = hub.checkpoint_dir() / entry.checkpoint_file
    if cached.is_file():
        return cached
    return _download(entry.weights, entry.sha256_prefix, checkpoint, progress)


def _download(url: str, sha256_prefix: Optional[str], name: str, progress: bool = True) -> Path:
    from detzoo.zoo import hub
    from detzoo.zoo.index import checkpoint_file_name

    try:
        return hub.download(url, sha256_prefix=sha256_prefix, progress=progress)
    except DetzooError as exc:
        target = hub.checkpoint_dir() / checkpoint_file_name(url)
        raise CheckpointError(f"pretrained weights '{name}': {exc}. Offline, download {url} elsewhere "
                              f"and place it at {target} (the cache, ${hub.HOME_ENV} to move it), "
                              f"or give init_cfg checkpoint=<local path>") from None


def _read_paddle(path: Path, module: nn.Module) -> Mapping[str, torch.Tensor]:
    """Paddle ImageNet parameters -> the backbone's own keys (the classifier is ignored)."""
    from detzoo.zoo.converters import paddle as paddle_io
    from detzoo.zoo.converters import paddle_single_stage as mappings

    params = paddle_io.read_paddle_params(path)
    m = paddle_io._Mapper(params, str(path))
    kind = type(module).__name__
    if kind == "ResNet" and getattr(module, "block", None) is not None and module.block.expansion == 1:
        mappings.map_resnet_basic(m, "", depth=module.depth)
    elif kind in mappings.BACKBONE_MAPPERS and kind != "ResNet":
        mappings.BACKBONE_MAPPERS[kind](m)
    elif kind == "ResLayer":
        # a C4 R-CNN's shared RoI head: the archive's res5 blocks (Paddle's ResNetC5 reads them
        # from the ImageNet weights too); a vd archive (deep stem conv1_1) has vd shortcuts there
        paddle_io.map_res5_head(m, key="head", vd=m.has("conv1_1_weights"))
        m.out = type(m.out)((k[len("head."):], v) for k, v in m.out.items())
    elif kind in ("ResNet", "ResNeXt"):
        paddle_io.map_resnet(m, prefix_key="backbone")
        m.out = type(m.out)((k[len("backbone."):], v) for k, v in m.out.items())
    else:
        raise CheckpointError(f"{path}: detzoo has no Paddle name mapping for the {kind} backbone")
    own = module.state_dict()
    state = dict(m.out)
    for key in own:  # Paddle keeps no batch counters
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = own[key]
    return state


def load_backbone_weights(module: nn.Module, path: str, prefix: Optional[str] = None,
                          progress: bool = True) -> Path:
    """Load the entries of checkpoint ``path`` (optionally those under ``prefix``, stripped) whose
    names exist in ``module``; keys the module lacks (a classifier) are skipped, as mmcv's
    non-strict loading does. ``path`` may also be a model-zoo name or URL (module docstring).
    No matching key or a shape mismatch is a :class:`CheckpointError`. Reads with
    ``weights_only=True``. Returns the local file that was read."""
    from detzoo.engine.checkpoint import load_checkpoint

    file = resolve_pretrained(path, progress=progress)
    if str(file).endswith(_PADDLE_SUFFIXES):
        state = _read_paddle(file, module)
    else:
        state = load_checkpoint(file)["state_dict"]
    if prefix:
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    own = module.state_dict()
    matched = {k: v for k, v in state.items() if k in own}
    if not matched:
        name = type(module).__name__ + (f"-{module.depth}" if hasattr(module, "depth") else "")
        raise CheckpointError(f"{file}: no key matches the {name} backbone (prefix={prefix!r})")
    for key, value in matched.items():
        if value.shape != own[key].shape:
            raise CheckpointError(f"{file}: {key} has shape {tuple(value.shape)}, the backbone "
                                  f"expects {tuple(own[key].shape)}")
    module.load_state_dict(matched, strict=False)
    return file


def pretrained_init_cfgs(model: nn.Module) -> list[tuple[str, nn.Module, Mapping]]:
    """``(qualified name, module, init_cfg)`` of every submodule (the model itself included, as
    ``""``) whose ``init_cfg`` is ``dict(type="Pretrained", ...)``, in ``named_modules`` order."""
    found = []
    for name, module in model.named_modules():
        cfg = getattr(module, "init_cfg", None)
        if isinstance(cfg, Mapping) and cfg.get("type") == "Pretrained":
            if not cfg.get("checkpoint"):
                raise ConfigError(f"{name or type(model).__name__}: init_cfg={dict(cfg)!r} names no "
                                  "checkpoint (dict(type='Pretrained', checkpoint=path | zoo name | URL))")
            found.append((name, module, cfg))
    return found


class PretrainedInitMixin:
    """``init_weights()`` as MMDetection's: the module's own random init (its ``_init_random``),
    then the checkpoint of its ``init_cfg`` (None or ``dict(type="Pretrained", checkpoint=...,
    prefix=...)``). Checkpoint keys absent from the module (torchvision's ``fc.*``) are ignored,
    as mmcv's non-strict loading does; a shape mismatch or no matching key at all raises
    :class:`CheckpointError`. Training calls :func:`load_pretrained_weights` instead, which loads
    the same checkpoints without drawing random numbers again."""

    init_cfg: Optional[dict]

    def _init_random(self) -> None:
        raise NotImplementedError

    def init_weights(self) -> None:
        with torch.no_grad():
            self._init_random()
        if self.init_cfg is not None:
            load_backbone_weights(self, self.init_cfg["checkpoint"], self.init_cfg.get("prefix"))


def load_pretrained_weights(model: nn.Module, log: Optional[Callable[[str], None]] = print,
                            progress: bool = True) -> list[tuple[str, str]]:
    """Load the checkpoint of every ``Pretrained`` ``init_cfg`` in ``model`` (backbones, C4 shared
    RoI heads) into its module: what MMDetection's ``model.init_weights()`` does before training,
    minus the random re-initialisation (modules keep the init they got when built, so a seeded
    run without any ``init_cfg`` stays bit-identical, and no random numbers are drawn here).

    Returns ``[(module name, local file), ...]`` in model order, and logs one line per module
    through ``log`` (None: silent). Raises :class:`CheckpointError` on the first checkpoint that
    cannot be found, downloaded or loaded, naming the module, what to do offline, and how to
    train that module from scratch instead (``--cfg-options <module>.init_cfg=None``).
    """
    loaded = []
    for name, module, cfg in pretrained_init_cfgs(model):
        where = name or type(model).__name__
        checkpoint = os.fspath(cfg["checkpoint"])
        try:
            file = load_backbone_weights(module, checkpoint, cfg.get("prefix"), progress=progress)
        except CheckpointError as exc:
            raise CheckpointError(f"{where}: {exc}. To train it from scratch instead: "
                                  f"--cfg-options model.{where}.init_cfg=None") from None
        loaded.append((where, str(file)))
        if log is not None:
            shown = checkpoint if checkpoint == str(file) else f"{checkpoint} ({file})"
            log(f"{where}: initialised from {shown}")
    return loaded
