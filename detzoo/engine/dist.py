"""Thin helpers over ``torch.distributed`` (one process per GPU, launched by ``torchrun``)."""
from __future__ import annotations

import os
from typing import Callable

import torch
import torch.distributed as dist
from torch import nn

from detzoo.errors import DetzooError


def get_dist_info() -> tuple[int, int]:
    """``(rank, world_size)``; ``(0, 1)`` when torch.distributed is not initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main_process() -> bool:
    return get_dist_info()[0] == 0


def init_dist(backend: str | None = None, device: str | torch.device | None = None) -> tuple[int, int]:
    """Initialise the default process group from the ``torchrun`` environment variables.

    ``backend`` defaults to NCCL when the processes compute on CUDA (``device``; without one: when
    CUDA is available), else gloo: NCCL only moves CUDA tensors. Each process is pinned to GPU
    ``LOCAL_RANK``. Returns ``(rank, world_size)``.
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
        on_cuda = torch.device(device).type == "cuda" if device is not None else torch.cuda.is_available()
        backend = "nccl" if on_cuda else "gloo"
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


def barrier() -> None:
    """Wait for every process (no-op when not distributed)."""
    if get_dist_info()[1] > 1:
        dist.barrier()


def destroy_dist() -> None:
    """Tear the default process group down (no-op when none exists)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_gather_objects(obj: object) -> list:
    """``[obj of rank 0, obj of rank 1, ...]`` (pickled through the default group); ``[obj]``
    when not distributed. Under NCCL the bytes travel through the current CUDA device."""
    world_size = get_dist_info()[1]
    if world_size == 1:
        return [obj]
    gathered: list = [None] * world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def collect_in_order(indexed_results: list[tuple[int, object]], size: int) -> list:
    """Every rank's ``(dataset index, result)`` pairs merged into ``[result of index 0, ...,
    result of index size-1]`` on every rank.

    Samplers pad the last shard with repeated indices so all ranks run the same number of
    batches; a repeat is dropped (its result equals the first one). Raises DetzooError when an
    index in ``range(size)`` was run by no rank.
    """
    merged: dict[int, object] = {}
    for part in all_gather_objects(list(indexed_results)):
        for index, result in part:
            merged.setdefault(int(index), result)
    missing = [i for i in range(size) if i not in merged]
    if missing:
        raise DetzooError(f"distributed test: no rank produced results for dataset indices "
                          f"{missing[:10]}{' ...' if len(missing) > 10 else ''} of {size}")
    return [merged[i] for i in range(size)]


# --- SyncBN ---------------------------------------------------------------------------------

class SyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Synchronised batch norm for CPU processes (gloo), where ``nn.SyncBatchNorm`` refuses to
    run (and DDP refuses to wrap it); plain batch norm when there is one process or in eval mode.

    The batch statistics are the differentiable all-reduce of per-process sums ``(sum x,
    sum x^2, count)`` per channel, so the normalisation, its gradient and the running statistics
    equal those of ``nn.BatchNorm`` over the union batch of all processes (running variance
    unbiased over the union, as torch). On CUDA, :func:`convert_sync_batchnorm` uses torch's
    fused ``nn.SyncBatchNorm`` instead.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:  # noqa: A002 - torch's name
        if input.dim() < 2:
            raise ValueError(f"batch norm expects at least 2-d input, got {input.dim()}-d")

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002 - torch's name
        world_size = get_dist_info()[1]
        if not (self.training and world_size > 1):
            return self._plain(input)
        return self._gloo_forward(input, world_size)

    def _momentum(self) -> float:
        if self.momentum is None:  # cumulative moving average
            return 1.0 / float(self.num_batches_tracked)
        return self.momentum

    def _plain(self, input: torch.Tensor) -> torch.Tensor:
        use_batch_stats = self.training or self.running_mean is None
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
        momentum = self._momentum() if self.training and self.track_running_stats else 0.0
        return nn.functional.batch_norm(
            input, self.running_mean if not self.training or self.track_running_stats else None,
            self.running_var if not self.training or self.track_running_stats else None,
            self.weight, self.bias, use_batch_stats, momentum, self.eps)

    def _gloo_forward(self, input: torch.Tensor, world_size: int) -> torch.Tensor:
        from torch.distributed.nn.functional import all_reduce as differentiable_all_reduce

        channels = input.shape[1]
        flat = input.transpose(0, 1).reshape(channels, -1).float()  # [C, N*H*W]
        count = torch.full((channels, 1), float(flat.shape[1]), device=input.device)
        stats = torch.cat([flat.sum(1, keepdim=True), (flat * flat).sum(1, keepdim=True), count], 1)
        stats = differentiable_all_reduce(stats)  # [C, 3] sums over every process
        total = stats[0, 2]
        mean = stats[:, 0] / total
        var = (stats[:, 1] / total - mean * mean).clamp_min(0)  # biased, as in normalisation
        if self.track_running_stats and self.running_mean is not None:
            if self.num_batches_tracked is not None:
                self.num_batches_tracked.add_(1)
            momentum = self._momentum()
            with torch.no_grad():
                unbiased = var * (total / (total - 1).clamp_min(1))
                self.running_mean.mul_(1 - momentum).add_(mean.detach().to(self.running_mean.dtype), alpha=momentum)
                self.running_var.mul_(1 - momentum).add_(unbiased.detach().to(self.running_var.dtype), alpha=momentum)
        shape = (1, channels) + (1,) * (input.dim() - 2)
        out = (input.float() - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out.to(input.dtype)


def _copy_norm(source: nn.modules.batchnorm._BatchNorm, target: nn.modules.batchnorm._BatchNorm) -> None:
    if source.affine:
        with torch.no_grad():
            target.weight = source.weight
            target.bias = source.bias
    target.running_mean, target.running_var = source.running_mean, source.running_var
    target.num_batches_tracked = source.num_batches_tracked
    target.training = source.training
    if hasattr(source, "qconfig"):
        target.qconfig = source.qconfig


def convert_sync_batchnorm(module: nn.Module, device: torch.device | str = "cpu") -> tuple[nn.Module, int]:
    """Replace every batch norm of ``module`` by a synchronised one sharing its parameters and
    buffers; returns ``(module, count of layers that synchronise)``.

    On CUDA: torch's ``nn.SyncBatchNorm`` (``convert_sync_batchnorm``). Elsewhere: this module's
    :class:`SyncBatchNorm` (also replacing ``nn.SyncBatchNorm`` layers built from
    ``norm_cfg=dict(type='SyncBN')``). Frozen layers (``requires_grad=False``) stay frozen;
    layers kept in eval mode (``norm_eval``) use their running statistics and never synchronise.
    """
    if torch.device(device).type == "cuda":
        module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
        return module, sum(isinstance(m, nn.SyncBatchNorm) for m in module.modules())
    return _replace_norms(module, lambda m: isinstance(m, nn.modules.batchnorm._BatchNorm)
                          and type(m) is not SyncBatchNorm, SyncBatchNorm)


def _replace_norms(module: nn.Module, wanted: Callable[[nn.Module], bool],
                   norm_type: type) -> tuple[nn.Module, int]:
    """Every submodule for which ``wanted`` holds becomes a ``norm_type`` sharing its parameters
    and buffers; returns ``(module, count)``."""
    count = 0

    def replace(child: nn.Module) -> nn.Module:
        nonlocal count
        if wanted(child):
            new = norm_type(child.num_features, child.eps, child.momentum, child.affine,
                            child.track_running_stats)
            _copy_norm(child, new)
            count += 1
            return new
        for name, grandchild in child.named_children():
            child.add_module(name, replace(grandchild))
        return child

    return replace(module), count


class _BatchNormXd(nn.modules.batchnorm._BatchNorm):
    """Plain batch norm for inputs of any rank >= 2 (what a reverted SyncBN becomes, since a
    SyncBN does not record whether it normalised 1d, 2d or 3d features; mmcv does the same)."""

    def _check_input_dim(self, input: torch.Tensor) -> None:  # noqa: A002 - torch's name
        if input.dim() < 2:
            raise ValueError(f"batch norm expects at least 2-d input, got {input.dim()}-d")


def revert_sync_batchnorm(module: nn.Module) -> tuple[nn.Module, int]:
    """Replace every ``nn.SyncBatchNorm`` and :class:`SyncBatchNorm` by a plain batch norm
    sharing its parameters and buffers, for single-process use; returns ``(module, count)``."""
    return _replace_norms(module, lambda m: isinstance(m, (nn.SyncBatchNorm, SyncBatchNorm)), _BatchNormXd)
