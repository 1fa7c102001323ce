"""Mixed-precision training: autocast + (on CUDA) a dynamic loss scaler.

* CPU: ``torch.autocast("cpu", dtype=torch.bfloat16)``. bf16 keeps float32's exponent range, so
  gradients cannot overflow and no loss scaling is needed.
* CUDA: ``torch.autocast("cuda", dtype=torch.float16)`` and ``torch.amp.GradScaler``: the loss is
  multiplied by the scale before ``backward``; a step whose gradients hold inf/NaN is skipped and
  the scale halved (doubled after 2000 clean steps), as mmcv's ``Fp16OptimizerHook`` with
  ``loss_scale='dynamic'``. A number as ``fp16.loss_scale`` is the initial scale.

Weights, optimizer state and the summed losses stay float32: autocast runs the ops on its
lower-precision list (convolutions, matmuls) in bf16/fp16 and the ones on its float32 list
(softmax, log_softmax, cross entropy, norms, ...) in float32; ``parse_losses`` averages and sums
the loss terms in float32.

Config (MMDetection style): ``fp16 = dict(loss_scale=512.)`` or ``fp16 = dict(loss_scale='dynamic')``
turns it on, as does ``amp = True``; ``detzoo train --amp`` does the same from the command line.
"""
from __future__ import annotations

import contextlib
import numbers
from typing import Any, ContextManager

import torch

from detzoo.errors import ConfigError


def amp_requested(cfg: Any) -> bool:
    """Whether a config asks for mixed precision (``amp`` truthy, or an ``fp16`` section)."""
    def get(key: str) -> Any:
        if cfg is None:
            return None
        return cfg.get(key) if hasattr(cfg, "get") else getattr(cfg, key, None)

    amp, fp16 = get("amp"), get("fp16")
    if fp16 is not None and not hasattr(fp16, "get") and not isinstance(fp16, bool):
        raise ConfigError(f"config key fp16 must be a dict such as dict(loss_scale='dynamic'), got {fp16!r}")
    return bool(amp) or bool(fp16 is not None and fp16 is not False)


class AmpContext:
    """What a training step needs for (optional) mixed precision on ``device``.

    ``enabled=False`` makes every method the plain float32 operation (``autocast`` is a null
    context, ``backward`` is ``loss.backward()``, ``step`` is ``optimizer.step()``), so the
    float32 numerics are unchanged.
    """

    def __init__(self, device: torch.device | str, enabled: bool, loss_scale: Any = "dynamic") -> None:
        self.device_type = torch.device(device).type
        self.enabled = bool(enabled)
        self.dtype: torch.dtype | None = None
        self.scaler: torch.amp.GradScaler | None = None
        if not self.enabled:
            return
        if self.device_type == "cuda":
            self.dtype = torch.float16
            init_scale = 2.0 ** 16
            if isinstance(loss_scale, numbers.Real) and not isinstance(loss_scale, bool):
                if loss_scale <= 0:
                    raise ConfigError(f"fp16.loss_scale must be positive or 'dynamic', got {loss_scale!r}")
                init_scale = float(loss_scale)
            elif loss_scale not in ("dynamic", None):
                raise ConfigError(f"fp16.loss_scale must be a number or 'dynamic', got {loss_scale!r}")
            self.scaler = torch.amp.GradScaler("cuda", init_scale=init_scale)
        elif self.device_type == "cpu":
            self.dtype = torch.bfloat16
        else:
            raise ConfigError(f"mixed precision (--amp / fp16) supports cpu (bf16) and cuda (fp16), "
                              f"not device {self.device_type!r}")

    @property
    def skips_overflow(self) -> bool:
        """True when a loss scaler skips steps with inf/NaN gradients (so those are expected)."""
        return self.scaler is not None

    def describe(self) -> str:
        if not self.enabled:
            return "off (float32)"
        scaling = f", dynamic loss scale from {self.scaler.get_scale():g}" if self.scaler else ""
        return f"{self.device_type} autocast to {str(self.dtype).replace('torch.', '')}{scaling}"

    def autocast(self) -> ContextManager:
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def unscale_(self, optimizer: torch.optim.Optimizer) -> None:
        """Divide the gradients by the loss scale in place (before clipping them)."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is None:
            optimizer.step()
            return
        self.scaler.step(optimizer)  # skipped when the gradients hold inf/NaN
        self.scaler.update()

    def state_dict(self) -> dict:
        """The loss scaler's state (empty without one), stored in checkpoints for ``--resume``."""
        return dict(self.scaler.state_dict()) if self.scaler is not None else {}

    def load_state_dict(self, state: dict | None) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)
