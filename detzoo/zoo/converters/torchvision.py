"""torchvision detection checkpoints (v1 builders) -> detzoo's ``{"state_dict", "meta"}``.

Architectures (``ARCHS``) and the detzoo config whose model reproduces torchvision's outputs:
``fasterrcnn_resnet50_fpn``, ``maskrcnn_resnet50_fpn``, ``retinanet_resnet50_fpn``,
``fcos_resnet50_fpn`` -> ``configs/torchvision/<arch>.py``.

Key mapping (torchvision names from its modules; both the current ``Conv2dNormActivation``
layout ``....0.weight`` and the older plain-conv layout, which torchvision renames on load):

- ``backbone.body.*`` -> ``backbone.*`` (ResNet names agree; FrozenBatchNorm2d has no
  ``num_batches_tracked``, nor does detzoo's ``FrozenBN``);
- ``backbone.fpn.inner_blocks.i`` / ``layer_blocks.i`` -> ``neck.lateral_convs.i.conv`` /
  ``neck.fpn_convs.i.conv``; ``extra_blocks.p6`` / ``p7`` -> the next ``fpn_convs``;
- ``rpn.head.conv`` / ``cls_logits`` / ``bbox_pred`` -> ``rpn_head.rpn_conv`` / ``rpn_cls`` / ``rpn_reg``;
- ``roi_heads.box_head.fc6`` / ``fc7`` -> ``roi_head.bbox_head.shared_fcs.0`` / ``1``;
  ``box_predictor.cls_score`` / ``bbox_pred`` -> ``fc_cls`` / ``fc_reg`` (91 classes, background
  at 0, kept as they are: detzoo labels are torchvision's);
- ``roi_heads.mask_head.i`` -> ``roi_head.mask_head.convs.i.conv``; ``mask_predictor.conv5_mask``
  / ``mask_fcn_logits`` -> ``upsample`` / ``conv_logits``;
- RetinaNet ``head.{classification,regression}_head.conv.i`` -> ``bbox_head.{cls,reg}_convs.i.conv``,
  ``cls_logits`` / ``bbox_reg`` -> ``retina_cls`` / ``retina_reg``;
- FCOS ``conv.{3i}`` (conv) / ``conv.{3i+1}`` (GroupNorm) -> ``{cls,reg}_convs.i.conv`` / ``.gn``,
  ``cls_logits`` / ``bbox_reg`` / ``bbox_ctrness`` -> ``conv_cls`` / ``conv_reg`` /
  ``conv_centerness``; detzoo's per-level ``scales.i.scale`` are added as 1.0 (torchvision has none).
"""
from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any, Callable, Mapping, Optional

import torch

from detzoo.errors import CheckpointError
from detzoo.models.torchvision_compat import TORCHVISION_COCO_CATEGORIES

ARCHS = ("fasterrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn", "retinanet_resnet50_fpn", "fcos_resnet50_fpn")
ARCH_CONFIGS = {arch: f"configs/torchvision/{arch}.py" for arch in ARCHS}
_FCOS_LEVELS = 5


def _state_dict(checkpoint: Mapping[str, Any]) -> Mapping[str, Any]:
    for key in ("state_dict", "model"):
        if isinstance(checkpoint.get(key), Mapping):
            checkpoint = checkpoint[key]
            break
    if not checkpoint or not all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        raise CheckpointError(f"not a torchvision state dict (keys {list(checkpoint)[:6]}): expected tensors only")
    if all(k.startswith("module.") for k in checkpoint):
        checkpoint = {k[len("module."):]: v for k, v in checkpoint.items()}
    return checkpoint


def detect_arch(keys) -> Optional[str]:
    """The architecture a torchvision state dict's keys belong to, or None."""
    keys = set(keys)
    if not any(k.startswith("backbone.body.") for k in keys):
        return None
    if any(k.startswith("roi_heads.mask_predictor.") for k in keys):
        return "maskrcnn_resnet50_fpn"
    if any(k.startswith("roi_heads.box_predictor.") for k in keys):
        return "fasterrcnn_resnet50_fpn"
    if "head.regression_head.bbox_ctrness.weight" in keys:
        return "fcos_resnet50_fpn"
    if "head.classification_head.cls_logits.weight" in keys:
        return "retinanet_resnet50_fpn"
    return None


def _common_rules(num_fpn_levels: int) -> list:
    """(pattern, replacement) pairs for the backbone and FPN."""
    return [
        (r"^backbone\.body\.(.*)$", r"backbone.\1"),
        (r"^backbone\.fpn\.inner_blocks\.(\d+)\.(?:0\.)?(weight|bias)$", r"neck.lateral_convs.\1.conv.\2"),
        (r"^backbone\.fpn\.layer_blocks\.(\d+)\.(?:0\.)?(weight|bias)$", r"neck.fpn_convs.\1.conv.\2"),
        (r"^backbone\.fpn\.extra_blocks\.p6\.(weight|bias)$", rf"neck.fpn_convs.{num_fpn_levels}.conv.\1"),
        (r"^backbone\.fpn\.extra_blocks\.p7\.(weight|bias)$", rf"neck.fpn_convs.{num_fpn_levels + 1}.conv.\1"),
    ]


_RCNN_RULES = [
    (r"^rpn\.head\.conv\.(?:0\.0\.)?(weight|bias)$", r"rpn_head.rpn_conv.\1"),
    (r"^rpn\.head\.cls_logits\.(weight|bias)$", r"rpn_head.rpn_cls.\1"),
    (r"^rpn\.head\.bbox_pred\.(weight|bias)$", r"rpn_head.rpn_reg.\1"),
    (r"^roi_heads\.box_head\.fc6\.(weight|bias)$", r"roi_head.bbox_head.shared_fcs.0.\1"),
    (r"^roi_heads\.box_head\.fc7\.(weight|bias)$", r"roi_head.bbox_head.shared_fcs.1.\1"),
    (r"^roi_heads\.box_predictor\.cls_score\.(weight|bias)$", r"roi_head.bbox_head.fc_cls.\1"),
    (r"^roi_heads\.box_predictor\.bbox_pred\.(weight|bias)$", r"roi_head.bbox_head.fc_reg.\1"),
]
_MASK_RULES = [
    (r"^roi_heads\.mask_head\.(\d+)\.0\.(weight|bias)$", r"roi_head.mask_head.convs.\1.conv.\2"),
    (r"^roi_heads\.mask_head\.mask_fcn(\d+)\.(weight|bias)$", None),  # old layout, 1-based: see below
    (r"^roi_heads\.mask_predictor\.conv5_mask\.(weight|bias)$", r"roi_head.mask_head.upsample.\1"),
    (r"^roi_heads\.mask_predictor\.mask_fcn_logits\.(weight|bias)$", r"roi_head.mask_head.conv_logits.\1"),
]
_RETINA_RULES = [
    (r"^head\.classification_head\.conv\.(\d+)\.(?:0\.)?(weight|bias)$", r"bbox_head.cls_convs.\1.conv.\2"),
    (r"^head\.regression_head\.conv\.(\d+)\.(?:0\.)?(weight|bias)$", r"bbox_head.reg_convs.\1.conv.\2"),
    (r"^head\.classification_head\.cls_logits\.(weight|bias)$", r"bbox_head.retina_cls.\1"),
    (r"^head\.regression_head\.bbox_reg\.(weight|bias)$", r"bbox_head.retina_reg.\1"),
]
_FCOS_RULES = [
    (r"^head\.classification_head\.cls_logits\.(weight|bias)$", r"bbox_head.conv_cls.\1"),
    (r"^head\.regression_head\.bbox_reg\.(weight|bias)$", r"bbox_head.conv_reg.\1"),
    (r"^head\.regression_head\.bbox_ctrness\.(weight|bias)$", r"bbox_head.conv_centerness.\1"),
]


def _fcos_tower(key: str) -> Optional[str]:
    """``head.classification_head.conv.{3i}`` -> ``bbox_head.cls_convs.i.conv``, ``{3i+1}`` -> ``.gn``."""
    m = re.match(r"^head\.(classification|regression)_head\.conv\.(\d+)\.(weight|bias)$", key)
    if not m:
        return None
    index = int(m.group(2))
    if index % 3 == 2:  # ReLU slots have no weights
        return None
    tower = "cls_convs" if m.group(1) == "classification" else "reg_convs"
    part = "conv" if index % 3 == 0 else "gn"
    return f"bbox_head.{tower}.{index // 3}.{part}.{m.group(3)}"


def _rename(key: str, rules: list, extra: Optional[Callable[[str], Optional[str]]] = None) -> Optional[str]:
    if extra is not None:
        new = extra(key)
        if new is not None:
            return new
    for pattern, replacement in rules:
        m = re.match(pattern, key)
        if m:
            if replacement is None:  # old mask layout: mask_fcn1..4
                return f"roi_head.mask_head.convs.{int(m.group(1)) - 1}.conv.{m.group(2)}"
            return m.expand(replacement)
    return None


def convert(checkpoint: Mapping[str, Any], arch: str | None = None) -> dict:
    """A torchvision detection state dict (or a dict holding one under ``state_dict`` / ``model``)
    -> ``{"state_dict": OrderedDict, "meta": {"config", "source", "arch", "CLASSES"}}``.

    ``arch`` is one of :data:`ARCHS`; None infers it from the keys. Raises CheckpointError on an
    unknown layout, a key that maps nowhere, or an architecture the keys do not match.
    """
    state = _state_dict(checkpoint)
    detected = detect_arch(state.keys())
    if arch in (None, "auto"):
        if detected is None:
            raise CheckpointError(f"not a known torchvision detection layout (first keys {list(state)[:4]}); "
                                  f"expected one of {', '.join(ARCHS)}")
        arch = detected
    if arch not in ARCHS:
        raise CheckpointError(f"arch {arch!r} is not a torchvision architecture detzoo converts; "
                              f"known: {', '.join(ARCHS)}")
    if detected != arch:
        raise CheckpointError(f"arch {arch!r} was asked for but the keys are those of {detected or 'no known model'}")
    one_stage = arch in ("retinanet_resnet50_fpn", "fcos_resnet50_fpn")
    rules = _common_rules(3 if one_stage else 4)
    extra = None
    if arch == "retinanet_resnet50_fpn":
        rules += _RETINA_RULES
    elif arch == "fcos_resnet50_fpn":
        rules += _FCOS_RULES
        extra = _fcos_tower
    else:
        rules += _RCNN_RULES + (_MASK_RULES if arch == "maskrcnn_resnet50_fpn" else [])
    out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        new = _rename(key, rules, extra)
        if new is None:
            raise CheckpointError(f"key {key!r} of this {arch} checkpoint has no detzoo counterpart")
        out[new] = value
    if arch == "fcos_resnet50_fpn":
        for level in range(_FCOS_LEVELS):
            out[f"bbox_head.scales.{level}.scale"] = torch.tensor(1.0)
    meta = {"config": ARCH_CONFIGS[arch], "source": "torchvision", "arch": arch,
            "CLASSES": TORCHVISION_COCO_CATEGORIES}
    return {"state_dict": out, "meta": meta}


__all__ = ["ARCHS", "ARCH_CONFIGS", "convert", "detect_arch"]
