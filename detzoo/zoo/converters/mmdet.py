"""MMDetection 2.x / 3.x checkpoints -> detzoo's ``{"state_dict", "meta"}``.

The weights need no renaming (detzoo uses MMDetection's module names); what differs between
files is the wrapping, which this normalises:

- ``{"meta", "state_dict", ...}`` (mmcv / mmengine runners; 3.x adds ``message_hub``,
  ``param_schedulers``), ``{"model": ...}`` or a bare state dict;
- DDP ``module.`` prefixes (stripped with :func:`detzoo.engine.checkpoint.strip_prefix`);
- ``meta``: 2.x ``CLASSES`` or 3.x ``dataset_meta["classes"]`` -> ``CLASSES``; the training
  config text and versions are kept;
- ``arch="rpn"``: a 2.x stand-alone RPN's ``rpn_head.*`` keys -> ``bbox_head.*`` (the
  :meth:`detzoo.models.detectors.rpn.RPN.convert_checkpoint_keys` hook, which
  ``load_model_weights`` also applies).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Mapping

import torch

from detzoo.engine.checkpoint import strip_prefix
from detzoo.errors import CheckpointError

_KEPT_META = ("CLASSES", "config", "mmdet_version", "mmcv_version", "mmengine_version", "epoch",
              "iter", "time", "detzoo_version")


def _weights(checkpoint: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """(state dict, meta) from any of the wrappings in the module docstring."""
    if isinstance(checkpoint.get("state_dict"), Mapping):
        return checkpoint["state_dict"], checkpoint.get("meta") or {}
    if isinstance(checkpoint.get("model"), Mapping):
        return checkpoint["model"], checkpoint.get("meta") or {}
    if checkpoint and all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        return checkpoint, {}
    raise CheckpointError(f"holds no model weights ('state_dict'); found keys {list(checkpoint)[:8]}")


def convert(checkpoint: Mapping[str, Any], arch: str | None = None) -> dict:
    """A detzoo checkpoint dict ``{"state_dict": OrderedDict[str, Tensor], "meta": dict}``.

    Non-tensor entries of the state dict (mmcv's ``_metadata`` is an attribute, not an entry;
    anything else is unexpected) raise CheckpointError naming the key.
    """
    state_dict, meta = _weights(checkpoint)
    weights = OrderedDict()
    for key, value in strip_prefix(state_dict).items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"state_dict entry {key!r} is a {type(value).__name__}, not a tensor")
        weights[key] = value
    if arch == "rpn":
        from detzoo.models.detectors.rpn import RPN

        weights = RPN.convert_checkpoint_keys(weights)
    elif arch not in (None, "", "auto"):
        raise CheckpointError(f"--arch {arch!r} means nothing for MMDetection checkpoints (their keys "
                              "need no mapping); only 'rpn' renames a 2.x RPN's rpn_head.* keys")
    out_meta = {k: meta[k] for k in _KEPT_META if k in meta}
    dataset_meta = meta.get("dataset_meta")
    if "CLASSES" not in out_meta and isinstance(dataset_meta, Mapping) and dataset_meta.get("classes"):
        out_meta["CLASSES"] = tuple(dataset_meta["classes"])
    if "CLASSES" in out_meta:
        out_meta["CLASSES"] = tuple(out_meta["CLASSES"])
    out_meta["converted_from"] = "mmdet"
    return {"state_dict": weights, "meta": out_meta}


__all__ = ["convert"]
