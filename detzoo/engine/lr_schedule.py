"""Learning-rate schedules with MMCV 1.x ``LrUpdaterHook`` semantics (MMDetection 2.x configs).

The lr is a pure function of ``(epoch, iteration)``, both 0-based, ``iteration`` counting all
iterations since the start of training. So a resumed run that restores epoch and iteration
continues the schedule exactly; ``state_dict`` only records the schedule's parameters.

Conventions taken from mmcv ``runner/hooks/lr_updater.py``:
  * regular lr (``by_epoch=True``): a function of the epoch. ``step=[8, 11]`` multiplies by
    ``gamma`` once for each step ``s <= epoch``: epochs 0..7 use 1x, 8..10 use 0.1x, 11 0.01x
    ("decay after epochs 8 and 11" in 1-based wording).
  * warmup, during the first ``warmup_iters`` iterations (``iteration < warmup_iters``), scales
    the regular lr: linear ``1 - (1 - i / warmup_iters) * (1 - warmup_ratio)``, constant
    ``warmup_ratio``, exp ``warmup_ratio ** (1 - i / warmup_iters)``.
  * cosine: ``target + 0.5 * (base - target) * (1 + cos(pi * progress / max_progress))`` with
    ``target = base * min_lr_ratio`` (or ``min_lr``).
Each optimizer param group follows the schedule from its own ``initial_lr`` (set from its lr
when the schedule is first applied, stored in the optimizer's state dict).
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from detzoo.errors import ConfigError

_WARMUPS = (None, "constant", "linear", "exp")


class LrSchedule:
    """Base class: warmup and the ``by_epoch`` logic; subclasses give :meth:`regular_lr`.

    Args:
        base_lr: lr of the (first) param group at the start of training.
        warmup: None, "constant", "linear" or "exp".
        warmup_iters: length of the warmup in iterations (in epochs if ``warmup_by_epoch``).
        warmup_ratio: lr at the start of warmup, as a fraction of the regular lr.
        warmup_by_epoch: count ``warmup_iters`` in epochs (needs ``epoch_len``).
        by_epoch: regular lr changes per epoch (True) or per iteration (False).
        epoch_len: iterations per epoch; needed for ``warmup_by_epoch`` and ``by_epoch=False``.
        max_epochs: total epochs; needed by schedules that anneal to an end point.
    """

    policy = "base"

    def __init__(self, base_lr: float, *, warmup: str | None = None, warmup_iters: int = 0,
                 warmup_ratio: float = 0.1, warmup_by_epoch: bool = False, by_epoch: bool = True,
                 epoch_len: int | None = None, max_epochs: int | None = None) -> None:
        if warmup not in _WARMUPS:
            raise ConfigError(f"lr_config.warmup={warmup!r} is not supported; use one of {_WARMUPS}")
        if warmup is not None:
            if not warmup_iters or warmup_iters <= 0:
                raise ConfigError(f"lr_config.warmup_iters must be a positive integer, got {warmup_iters!r}")
            if not 0 < warmup_ratio <= 1:
                raise ConfigError(f"lr_config.warmup_ratio must be in (0, 1], got {warmup_ratio!r}")
        if (warmup_by_epoch or not by_epoch) and not epoch_len:
            raise ConfigError("this lr schedule needs the number of iterations per epoch (epoch_len)")
        self.base_lr = float(base_lr)
        self.warmup = warmup
        self.warmup_ratio = float(warmup_ratio)
        self.warmup_by_epoch = bool(warmup_by_epoch)
        self.by_epoch = bool(by_epoch)
        self.epoch_len = epoch_len
        self.max_epochs = max_epochs
        self.warmup_iters = int(warmup_iters) * (epoch_len if warmup_by_epoch else 1)

    # --- the schedule ---------------------------------------------------------------------
    def regular_lr(self, base_lr: float, epoch: int, iteration: int) -> float:
        """The lr without warmup at (0-based) ``epoch`` / global ``iteration``."""
        raise NotImplementedError

    def progress(self, epoch: int, iteration: int) -> int:
        return epoch if self.by_epoch else iteration

    def warmup_factor(self, iteration: int) -> float:
        """Multiplier applied to the regular lr at global ``iteration`` (1.0 after warmup)."""
        if self.warmup is None or iteration >= self.warmup_iters:
            return 1.0
        if self.warmup == "constant":
            return self.warmup_ratio
        fraction = iteration / self.warmup_iters
        if self.warmup == "linear":
            return 1.0 - (1.0 - fraction) * (1.0 - self.warmup_ratio)
        return self.warmup_ratio ** (1.0 - fraction)  # exp

    def get_lr(self, epoch: int, iteration: int, base_lr: float | None = None) -> float:
        """The lr at (0-based) ``epoch`` and global ``iteration``, for ``base_lr`` (default: own)."""
        base = self.base_lr if base_lr is None else base_lr
        return self.regular_lr(base, epoch, iteration) * self.warmup_factor(iteration)

    def apply(self, optimizer, epoch: int, iteration: int) -> list[float]:
        """Set each param group's lr for this iteration; returns the lrs set."""
        lrs = []
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
            group["lr"] = self.get_lr(epoch, iteration, group["initial_lr"])
            lrs.append(group["lr"])
        return lrs

    # --- persistence ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Plain values describing the schedule (the lr itself is a function of epoch/iter)."""
        return {"policy": self.policy, **{k: v for k, v in vars(self).items() if not k.startswith("_")}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("policy") != self.policy:
            raise ConfigError(f"lr schedule state is for policy {state.get('policy')!r}, not {self.policy!r}")
        for key, value in state.items():
            if key != "policy":
                setattr(self, key, list(value) if isinstance(value, tuple) else value)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.state_dict().items() if k != "policy")
        return f"{type(self).__name__}({args})"


class FixedLrSchedule(LrSchedule):
    """Constant lr (plus optional warmup)."""

    policy = "fixed"

    def regular_lr(self, base_lr: float, epoch: int, iteration: int) -> float:
        return base_lr


class StepLrSchedule(LrSchedule):
    """Multiply the lr by ``gamma`` at each of ``step`` (epochs, or iterations if not by_epoch).

    ``step`` may be a list of milestones or an int period (decay every ``step``). ``min_lr``
    clips the decayed lr from below.
    """

    policy = "step"

    def __init__(self, base_lr: float, step: int | Sequence[int] = (8, 11), gamma: float = 0.1,
                 min_lr: float | None = None, **kwargs: Any) -> None:
        if isinstance(step, int):
            if step <= 0:
                raise ConfigError(f"lr_config.step must be positive, got {step}")
        elif not (isinstance(step, (list, tuple)) and all(isinstance(s, int) and s > 0 for s in step)):
            raise ConfigError(f"lr_config.step must be a positive int or a list of them, got {step!r}")
        super().__init__(base_lr, **kwargs)
        self.step = step if isinstance(step, int) else sorted(step)
        self.gamma = float(gamma)
        self.min_lr = min_lr

    def regular_lr(self, base_lr: float, epoch: int, iteration: int) -> float:
        progress = self.progress(epoch, iteration)
        if isinstance(self.step, int):
            exponent = progress // self.step
        else:
            exponent = sum(1 for s in self.step if progress >= s)
        lr = base_lr * self.gamma**exponent
        return lr if self.min_lr is None else max(lr, self.min_lr)


class CosineLrSchedule(LrSchedule):
    """Cosine annealing from the base lr to ``min_lr`` (or ``base * min_lr_ratio``)."""

    policy = "cosine"

    def __init__(self, base_lr: float, min_lr: float | None = None,
                 min_lr_ratio: float | None = None, **kwargs: Any) -> None:
        if (min_lr is None) == (min_lr_ratio is None):
            raise ConfigError("cosine lr_config needs exactly one of min_lr and min_lr_ratio")
        super().__init__(base_lr, **kwargs)
        if not self.max_epochs:
            raise ConfigError("cosine lr schedule needs max_epochs (runner.max_epochs)")
        self.min_lr = min_lr
        self.min_lr_ratio = min_lr_ratio

    def regular_lr(self, base_lr: float, epoch: int, iteration: int) -> float:
        if self.by_epoch:
            fraction = epoch / self.max_epochs
        else:
            fraction = iteration / (self.max_epochs * self.epoch_len)
        target = base_lr * self.min_lr_ratio if self.min_lr_ratio is not None else self.min_lr
        return target + 0.5 * (base_lr - target) * (1.0 + math.cos(math.pi * fraction))


_POLICIES = {"fixed": FixedLrSchedule, "step": StepLrSchedule,
             "cosine": CosineLrSchedule, "cosineannealing": CosineLrSchedule}


def build_lr_schedule(lr_config: Mapping[str, Any] | None, base_lr: float, *,
                      max_epochs: int | None = None, epoch_len: int | None = None) -> LrSchedule:
    """Schedule from an MMDetection ``lr_config`` dict (``policy="step"``, ``"CosineAnnealing"``...).

    ``None`` gives a constant lr, as a config without ``lr_config`` does in MMCV.
    """
    if lr_config is None:
        return FixedLrSchedule(base_lr, epoch_len=epoch_len, max_epochs=max_epochs)
    kwargs = dict(lr_config)
    policy = str(kwargs.pop("policy", "fixed"))
    cls = _POLICIES.get(policy.lower())
    if cls is None:
        raise ConfigError(
            f"lr_config.policy={policy!r} is not supported; use one of 'step', 'CosineAnnealing' "
            "('cosine'), 'fixed'"
        )
    kwargs.pop("type", None)
    try:
        return cls(base_lr, epoch_len=epoch_len, max_epochs=max_epochs, **kwargs)
    except TypeError as exc:  # an unknown key: name it instead of a Python signature error
        raise ConfigError(f"lr_config (policy={policy!r}): {exc}") from None
