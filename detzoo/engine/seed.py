"""Seeding and capture/restore of every random number generator a training run touches.

The RNG state is stored in checkpoints so that a resumed run draws exactly the random numbers
the uninterrupted run would have drawn (dropout, random augmentations, sampler shuffles). The
captured state holds only tensors, ints, floats, tuples and lists, so checkpoints stay loadable
with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import contextlib
import random
from typing import Any, Iterator

import numpy as np
import torch


def set_random_seed(seed: int, deterministic: bool = False) -> None:
    """Seed python ``random``, numpy's global RNG, torch (CPU and every CUDA device).

    ``deterministic=True`` also makes cuDNN pick deterministic kernels and turns off its
    autotuner, as MMDetection's ``set_random_seed`` does (slower; CPU results are unaffected).
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def get_rng_state() -> dict[str, Any]:
    """The state of python, numpy, torch CPU and (if present) all CUDA generators."""
    np_state = np.random.get_state(legacy=True)  # ('MT19937', uint32[624], pos, has_gauss, gauss)
    state: dict[str, Any] = {
        "python": random.getstate(),
        # numpy arrays would need unsafe globals to unpickle: keep the key as plain ints.
        "numpy": {
            "key": [int(v) for v in np_state[1]],
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "gauss": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`get_rng_state` captured. Missing entries are left untouched."""
    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
    if "numpy" in state:
        s = state["numpy"]
        np.random.set_state(
            ("MT19937", np.asarray(s["key"], dtype=np.uint32), s["pos"], s["has_gauss"], s["gauss"])
        )
    if "torch" in state:
        torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in cuda_states])


@contextlib.contextmanager
def preserved_rng_state() -> Iterator[None]:
    """Run a block (e.g. evaluation) without consuming the training run's random numbers."""
    state = get_rng_state()
    try:
        yield
    finally:
        set_rng_state(state)
