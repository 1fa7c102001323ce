"""Pipeline composition and the per-sample random generator shared by random steps."""
from __future__ import annotations

import numpy as np

from ...errors import ConfigError


def sample_rng(results: dict) -> np.random.Generator:
    """The random generator a pipeline step must draw from.

    The data loader puts a generator seeded from (seed, epoch, rank, position in the epoch)
    into ``results["rng"]`` so augmentation does not depend on which worker loads a sample.
    Without one (direct calls), a generator is drawn from numpy's global state, so
    ``np.random.seed`` still makes runs repeatable.
    """
    rng = results.get("rng")
    if rng is None:
        rng = np.random.default_rng(np.random.randint(0, 2**31 - 1))
        results["rng"] = rng
    return rng


def build_step(step, registry: dict | None = None, where: str = "pipeline step"):
    """A step from a callable, a step class, or ``dict(type=class or registered name, **kw)``.

    ``registry`` maps names to classes (default: the pipeline steps, ``TRANSFORMS``); ``where``
    names the config entry in error messages.
    """
    if isinstance(step, type):  # a step class given bare: build it with its defaults
        return build_step(dict(type=step), registry, where)
    if callable(step) and not isinstance(step, dict):
        return step
    if not isinstance(step, dict) or "type" not in step:
        raise ConfigError(f"{where} must be a callable or a dict with 'type', got {step!r}")
    kwargs = dict(step)
    step_type = kwargs.pop("type")
    if isinstance(step_type, str):
        if registry is None:
            from . import TRANSFORMS as registry  # late import: the package imports this module
        if step_type not in registry:
            raise ConfigError(f"{where}: unknown type {step_type!r}; known: {', '.join(sorted(registry))}")
        step_type = registry[step_type]
    try:
        return step_type(**kwargs)
    except TypeError as exc:
        name = getattr(step_type, "__name__", repr(step_type))
        raise ConfigError(f"{where} {name}: {exc}") from exc


class Compose:
    """Runs steps in order; a step returning None stops the pipeline and returns None."""

    def __init__(self, pipeline):
        if pipeline is None:
            pipeline = []
        elif callable(pipeline) or isinstance(pipeline, dict):
            pipeline = [pipeline]
        self.transforms = [build_step(step) for step in pipeline]

    def __call__(self, results):
        for transform in self.transforms:
            results = transform(results)
            if results is None:
                return None
        return results

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t!r}," for t in self.transforms)
        return f"Compose([{inner}\n])" if inner else "Compose([])"
