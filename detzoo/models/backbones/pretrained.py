"""Loading ImageNet (or any) weights into a backbone: one rule for every backbone's ``init_cfg``."""
from __future__ import annotations

import os
from typing import Optional

import torch
import torch.nn as nn

from detzoo.errors import CheckpointError


def load_backbone_weights(module: nn.Module, path: str, prefix: Optional[str] = None) -> None:
    """Load the entries of checkpoint ``path`` (optionally those under ``prefix``, stripped) whose
    names exist in ``module``; keys the module lacks (a classifier) are skipped, as mmcv's
    non-strict loading does. No matching key or a shape mismatch is a :class:`CheckpointError`.
    Reads with ``weights_only=True``."""
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: pretrained backbone checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt file or pickled objects beyond tensors
        raise CheckpointError(f"{path}: cannot read checkpoint ({err})") from None
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: no state dict found in checkpoint")
    if prefix:
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    own = module.state_dict()
    matched = {k: v for k, v in state.items() if k in own}
    if not matched:
        name = type(module).__name__ + (f"-{module.depth}" if hasattr(module, "depth") else "")
        raise CheckpointError(f"{path}: no key matches the {name} backbone (prefix={prefix!r})")
    for key, value in matched.items():
        if value.shape != own[key].shape:
            raise CheckpointError(f"{path}: {key} has shape {tuple(value.shape)}, the backbone "
                                  f"expects {tuple(own[key].shape)}")
    module.load_state_dict(matched, strict=False)
