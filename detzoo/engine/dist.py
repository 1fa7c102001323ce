"""Thin helpers over ``torch.distributed`` (one process per GPU, launched by ``torchrun``)."""
from __future__ import annotations

import os

import torch
import torch.distributed as dist

from detzoo.errors import DetzooError


def get_dist_info() -> tuple[int, int]:
    """``(rank, world_size)``; ``(0, 1)`` when torch.distributed is not initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main_process() -> bool:
    return get_dist_info()[0] == 0


def init_dist(backend: str | None = None) -> tuple[int, int]:
    """Initialise the default process group from the ``torchrun`` environment variables.

    ``backend`` defaults to NCCL when CUDA is available, else gloo. Each process is pinned to
    GPU ``LOCAL_RANK``. Returns ``(rank, world_size)``.
    """
    if dist.is_initialized():
        return get_dist_info()
    missing = [k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise DetzooError(
            f"distributed training needs the environment variables {', '.join(missing)}: "
            "launch it with `torchrun --nproc_per_node=<gpus> ...`"
        )
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend=backend)
    return get_dist_info()


def all_reduce_mean(values: torch.Tensor) -> torch.Tensor:
    """Average ``values`` over all processes (identity when not distributed)."""
    rank, world_size = get_dist_info()
    if world_size == 1:
        return values
    values = values.clone()
    dist.all_reduce(values)
    return values / world_size


def all_reduce_max(values: torch.Tensor) -> torch.Tensor:
    """Element-wise maximum over all processes (identity when not distributed)."""
    if get_dist_info()[1] == 1:
        return values
    values = values.clone()
    dist.all_reduce(values, op=dist.ReduceOp.MAX)
    return values
