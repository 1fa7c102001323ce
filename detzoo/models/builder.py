"""Build a detector from a config's ``model`` entry."""
from __future__ import annotations

from typing import Optional, Sequence

import torch.nn as nn

from detzoo.errors import ConfigError


def build_detector(model_cfg: dict, class_names: Optional[Sequence[str]] = None) -> nn.Module:
    """Instantiate ``model_cfg`` (a dict whose ``type`` is the detector class) bottom-up.

    ``class_names`` wins over ``model_cfg['class_names']``; their count must equal the box head's
    ``num_classes`` so labels index the names.
    """
    from detzoo.config import instantiate

    if not isinstance(model_cfg, dict) or "type" not in model_cfg:
        raise ConfigError("the config's 'model' must be a dict with a 'type' (the detector class)")
    cfg = dict(model_cfg)
    if class_names is not None:
        cfg["class_names"] = tuple(class_names)
    model = instantiate(cfg)
    names = getattr(model, "class_names", None)
    num_classes = _num_classes(model)
    if names is not None and num_classes is not None and len(names) != num_classes:
        raise ConfigError(f"the model predicts {num_classes} classes but {len(names)} class names were given; "
                          f"set model.roi_head.bbox_head.num_classes (or the head's num_classes) to {len(names)}")
    return model


def _num_classes(model: nn.Module) -> Optional[int]:
    for attr in ("roi_head", "bbox_head"):
        head = getattr(model, attr, None)
        if head is None:
            continue
        head = getattr(head, "bbox_head", head)
        if isinstance(head, nn.ModuleList):  # cascade: one box head per stage
            head = head[-1]
        if hasattr(head, "num_classes"):
            return int(head.num_classes)
    return None
