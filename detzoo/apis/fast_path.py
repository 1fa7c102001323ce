"""The inference fast path: BatchNorm folded, channels-last weights, bf16 where it is safe.

    model = optimize_for_inference(init_detector("faster_rcnn_r50_fpn_1x_coco", ckpt))
    det = inference_detector(model, "demo.jpg")      # enters inference_autocast(model) itself
    with inference_autocast(model):                   # when calling model.predict directly
        results = model.predict(batch["img"], batch["img_metas"])

Two steps, so that the exact and the approximate parts can be used separately:

- :func:`optimize_for_inference` (exact up to float rounding): folds every eval-mode BatchNorm
  into the conv before it (``detzoo.models.layers.fuse_conv_bn``), stores conv weights
  channels-last (the detectors feed channels-last images, see ``BaseDetector.extract_feat``, and
  oneDNN then needs no layout reorders), and marks the *reduced-precision regions*.
- :func:`inference_autocast` runs those regions under ``torch.autocast`` in bfloat16 when the
  device computes bf16 natively (CPUs with AVX512-BF16 or AMX, CUDA GPUs that support bf16);
  everything else stays float32, and each region's outputs are cast back to float32.

Which regions, and why (measured on Faster R-CNN R50-FPN, random weights, see
docs/performance.md): the residual stages after the first (``layer2``..``layer4``: most of the
arithmetic, and their bf16 rounding is averaged away by the FPN), the box head's shared FCs and
convs (12544x1024 and 1024x1024), and the RPN's 3x3 conv. The stem, ``layer1``, the neck and
every classifier / regressor layer stay float32: rounding the FPN outputs or the logits to bf16
reorders near-tied scores and changed ~6% of the detections, where this split keeps >= 95%
(same label, IoU >= 0.9). Backbones without ResNet stages run whole in bf16.
"""
from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterator, List, Optional, Sequence

import torch
from torch import nn

from detzoo.errors import ConfigError

__all__ = ["optimize_for_inference", "inference_autocast", "bf16_regions", "device_has_native_bf16",
           "is_optimized"]

_STATE = "_detzoo_fast_path"
# Head layers that run in reduced precision: the shared FCs / convs of (cascade) box heads and
# the RPN's shared 3x3 conv. Classifier and regressor layers are deliberately not listed.
_HEAD_REGION = re.compile(r"(^|\.)(bbox_head(\.\d+)?\.shared_(fcs|convs)\.\d+|rpn_head\.rpn_conv)$")


@dataclass
class _FastPathState:
    """What :func:`optimize_for_inference` recorded on a model (the attribute ``_STATE``)."""

    dtype: Optional[torch.dtype]                 # precision of the regions (None: all float32)
    regions: List[str]                           # qualified module names
    active: int = 0                              # nesting depth of inference_autocast(model)
    open_contexts: list = field(default_factory=list)  # autocasts entered by region pre-hooks
    handles: list = field(default_factory=list)  # hook handles (to remove them)


@lru_cache(maxsize=None)
def _cpu_flags() -> frozenset:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def device_has_native_bf16(device: torch.device) -> bool:
    """True where bf16 matmuls/convs run in hardware: CPUs with AVX512-BF16 or AMX-BF16 (read
    from /proc/cpuinfo; elsewhere oneDNN would emulate bf16, slower than float32), CUDA devices
    that report bf16 support."""
    device = torch.device(device)
    if device.type == "cpu":
        return bool({"avx512_bf16", "amx_bf16"} & _cpu_flags()) and torch.backends.mkldnn.is_available()
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return False


def bf16_regions(model: nn.Module) -> List[str]:
    """Qualified names of the modules :func:`inference_autocast` runs in bf16 (see module doc)."""
    regions = []
    backbone = getattr(model, "backbone", None)
    if backbone is not None:
        stages = list(getattr(backbone, "res_layers", None) or [])
        regions += [f"backbone.{name}" for name in stages[1:]] if stages else ["backbone"]
    regions += [name for name, _ in model.named_modules() if _HEAD_REGION.search(name)]
    return regions


def is_optimized(model: nn.Module) -> bool:
    """Whether :func:`optimize_for_inference` has been applied to ``model``."""
    return getattr(model, _STATE, None) is not None


def _to_float(value):
    """Reduced-precision float tensors (nested in tuples/lists/dicts) back to float32."""
    if isinstance(value, torch.Tensor):
        return value.float() if value.dtype in (torch.bfloat16, torch.float16) else value
    if isinstance(value, (tuple, list)):
        return type(value)(_to_float(v) for v in value)
    if isinstance(value, dict):
        return {k: _to_float(v) for k, v in value.items()}
    return value


def _add_region_hooks(module: nn.Module, state: _FastPathState, device_type: str) -> None:
    """Forward hooks that run ``module`` under autocast while ``inference_autocast`` is active."""

    def enter(_module, _args):
        if state.active:
            context = torch.autocast(device_type=device_type, dtype=state.dtype)
            context.__enter__()
            state.open_contexts.append(context)

    def leave(_module, _args, output):
        if state.active and state.open_contexts:
            state.open_contexts.pop().__exit__(None, None, None)
            return _to_float(output)
        return None

    state.handles.append(module.register_forward_pre_hook(enter))
    state.handles.append(module.register_forward_hook(leave))


def optimize_for_inference(model: nn.Module, bf16: Optional[bool] = None, fuse_bn: bool = True,
                           channels_last: bool = True, regions: Optional[Sequence[str]] = None) -> nn.Module:
    """Prepare ``model`` (a detector, in place) for fast inference; returns it in eval mode.

    Args:
        bf16: run the reduced-precision regions in bf16 under :func:`inference_autocast`;
            None (default) = where the model's device computes bf16 natively
            (:func:`device_has_native_bf16`); True on a device without it raises ConfigError.
        fuse_bn: fold eval-mode BatchNorms into their convs (the norms become ``nn.Identity``,
            so the model's state dict loses their keys: save checkpoints from an unoptimised
            model).
        channels_last: store 4-D weights channels-last (matches the channels-last images the
            detectors feed their backbones).
        regions: qualified names of the modules to run in bf16 instead of
            :func:`bf16_regions`'s choice (e.g. ``["backbone", "neck"]``: faster, less exact).

    The model is for inference only afterwards. Calling it twice does nothing the second time.
    """
    if is_optimized(model):
        return model
    params = list(model.parameters())
    device = params[0].device if params else torch.device("cpu")
    native = device_has_native_bf16(device)
    if bf16 and not native:
        raise ConfigError(f"optimize_for_inference(bf16=True): device {device} has no native bf16 "
                          "(CPU flags avx512_bf16/amx_bf16, or a CUDA GPU with bf16)")
    use_bf16 = native if bf16 is None else bool(bf16)
    model.eval()
    if fuse_bn:
        from detzoo.models.layers.fuse_conv_bn import fuse_conv_bn

        fuse_conv_bn(model)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    modules = dict(model.named_modules())
    chosen = []
    for name in (bf16_regions(model) if regions is None else regions):
        # a ModuleList / ModuleDict is never called itself: its entries are the regions
        if isinstance(modules.get(name), (nn.ModuleList, nn.ModuleDict)):
            chosen += [f"{name}.{child}" for child, _ in modules[name].named_children()]
        else:
            chosen.append(name)
    unknown = [name for name in chosen if name not in modules]
    if unknown:
        raise ConfigError(f"optimize_for_inference(regions=...): {type(model).__name__} has no module "
                          f"{unknown[0]!r}")
    state = _FastPathState(dtype=torch.bfloat16 if use_bf16 else None, regions=chosen if use_bf16 else [])
    for name in state.regions:
        _add_region_hooks(modules[name], state, device.type)
    setattr(model, _STATE, state)
    return model


@contextlib.contextmanager
def inference_autocast(model: nn.Module) -> Iterator[None]:
    """Run ``model``'s bf16 regions in bf16 inside this block (see :func:`optimize_for_inference`).

    A no-op for a model that was not optimised or has no bf16 regions, so callers can always
    wrap ``model.predict`` in it. Outputs of the regions are float32 again, so everything the
    caller sees (boxes, scores) is float32.
    """
    state = getattr(model, _STATE, None)
    if state is None or state.dtype is None:
        yield
        return
    depth = len(state.open_contexts)
    state.active += 1
    try:
        yield
    finally:
        state.active -= 1
        # a forward that raised inside a region never ran its exit hook: close those autocasts
        while len(state.open_contexts) > depth:
            state.open_contexts.pop().__exit__(None, None, None)
