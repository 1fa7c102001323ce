"""Batching: ``collate``, aspect-ratio grouped samplers and ``build_dataloader``.

Reproducibility: the loader hands each sample a seed made of (seed, epoch, rank, position in
the epoch); the dataset turns it into ``results['rng']`` for the random pipeline steps. The
batches of an epoch therefore depend on the seed only, not on the number of workers.
"""
from __future__ import annotations

import math
import random
from functools import partial
from typing import Optional

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler, SequentialSampler
from torch.utils.data.distributed import DistributedSampler

from ..errors import DataError


def collate(samples: list, size_divisor: int = 32, pad_value: float = 0.0) -> dict:
    """Stack ``Collect`` outputs into a batch (docs/architecture.md).

    img: CxHxW tensors padded bottom/right with ``pad_value`` to the batch's largest height and
    width, rounded up to a multiple of ``size_divisor`` -> [B, C, H, W]. img_metas and every
    other key (gt_bboxes, gt_labels, gt_bboxes_ignore, gt_masks, ...) -> lists, one per image.
    ``skipped_images`` (paths of unreadable training images replaced by the dataset) is gathered
    from the samples into one list, present only when something was skipped.
    """
    if not samples:
        raise DataError("collate: empty batch")
    if any(not isinstance(s, dict) for s in samples):
        raise DataError("collate: samples must be dicts from Collect; a list means "
                        "MultiScaleFlipAug produced several augmentations (collate those per "
                        "augmentation instead)")
    skipped = [path for s in samples for path in s.pop("skipped_images", ())]
    keys = set(samples[0])
    for s in samples[1:]:
        if set(s) != keys:
            raise DataError(f"collate: samples have different keys: {sorted(keys)} vs "
                            f"{sorted(s)}")
    imgs = [s["img"] for s in samples]
    if any(not isinstance(img, torch.Tensor) or img.dim() != 3 for img in imgs):
        raise DataError("collate: 'img' must be a CxHxW tensor; put DefaultFormatBundle (or "
                        "ImageToTensor) before Collect in the pipeline")
    max_h = max(img.shape[1] for img in imgs)
    max_w = max(img.shape[2] for img in imgs)
    if size_divisor and size_divisor > 1:
        max_h = math.ceil(max_h / size_divisor) * size_divisor
        max_w = math.ceil(max_w / size_divisor) * size_divisor
    batch_img = imgs[0].new_full((len(imgs), imgs[0].shape[0], max_h, max_w), pad_value)
    for i, img in enumerate(imgs):
        batch_img[i, :, :img.shape[1], :img.shape[2]] = img
    batch = {"img": batch_img}
    for key in sorted(keys - {"img"}):
        batch[key] = [s[key] for s in samples]
    if skipped:
        batch["skipped_images"] = skipped
    return batch


def _group_flags(dataset) -> np.ndarray:
    flag = getattr(dataset, "flag", None)
    if flag is None:
        return np.zeros(len(dataset), dtype=np.int64)
    return np.asarray(flag, dtype=np.int64)


class GroupSampler(Sampler):
    """Shuffled indices in batches of ``samples_per_gpu`` whose images share an aspect-ratio group
    (``dataset.flag``), as MMDetection's GroupSampler.

    Each group is shuffled and topped up with a few of its own indices to a multiple of
    samples_per_gpu; then the order of the batches is shuffled. Every index occurs at least once
    per epoch; the order depends only on (seed, epoch): call ``set_epoch`` each epoch.
    """

    def __init__(self, dataset, samples_per_gpu: int = 1, seed: int = 0):
        self.flag = _group_flags(dataset)
        self.samples_per_gpu = samples_per_gpu
        self.seed = seed
        self.epoch = 0
        self.group_sizes = np.bincount(self.flag) if len(self.flag) else np.zeros(0, np.int64)
        self.num_samples = int(sum(math.ceil(n / samples_per_gpu) * samples_per_gpu
                                   for n in self.group_sizes))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        rng = np.random.default_rng((self.seed, self.epoch))
        spg = self.samples_per_gpu
        chunks = []
        for group, size in enumerate(self.group_sizes):
            if size == 0:
                continue
            idx = rng.permutation(np.flatnonzero(self.flag == group))
            extra = math.ceil(size / spg) * spg - size
            chunks += [idx, rng.choice(idx, extra, replace=extra > size)]
        if not chunks:
            return iter([])
        batches = np.concatenate(chunks).reshape(-1, spg)
        return iter(batches[rng.permutation(len(batches))].reshape(-1).tolist())

    def __len__(self) -> int:
        return self.num_samples


class DistributedGroupSampler(Sampler):
    """GroupSampler for ``num_replicas`` processes; this one yields rank ``rank``'s share.

    Every group is shuffled with the (seed, epoch) generator, shared by all ranks, and repeated
    cyclically to a multiple of samples_per_gpu * num_replicas; batches are shuffled and
    dealt out in consecutive blocks, so each rank sees the same number of single-group batches
    (mmdet ``DistributedGroupSampler``).
    """

    def __init__(self, dataset, samples_per_gpu: int = 1, num_replicas: Optional[int] = None,
                 rank: Optional[int] = None, seed: int = 0):
        if num_replicas is None or rank is None:
            dist_on = torch.distributed.is_available() and torch.distributed.is_initialized()
            num_replicas = num_replicas if num_replicas is not None else (
                torch.distributed.get_world_size() if dist_on else 1)
            rank = rank if rank is not None else (torch.distributed.get_rank() if dist_on else 0)
        if not 0 <= rank < num_replicas:
            raise DataError(f"DistributedGroupSampler: rank {rank} not in [0, {num_replicas})")
        self.flag = _group_flags(dataset)
        self.samples_per_gpu = samples_per_gpu
        self.num_replicas = num_replicas
        self.rank = rank
        self.seed = seed
        self.epoch = 0
        self.group_sizes = np.bincount(self.flag) if len(self.flag) else np.zeros(0, np.int64)
        per_rank = [math.ceil(n / samples_per_gpu / num_replicas) * samples_per_gpu
                    for n in self.group_sizes]
        self.num_samples = int(sum(per_rank))
        self.total_size = self.num_samples * num_replicas

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        rng = np.random.default_rng((self.seed, self.epoch))
        spg, replicas = self.samples_per_gpu, self.num_replicas
        chunks = []
        for group, size in enumerate(self.group_sizes):
            if size == 0:
                continue
            idx = rng.permutation(np.flatnonzero(self.flag == group))
            total = math.ceil(size / spg / replicas) * spg * replicas
            chunks.append(np.resize(idx, total))  # cyclic repetition
        if not chunks:
            return iter([])
        batches = np.concatenate(chunks).reshape(-1, spg)
        indices = batches[rng.permutation(len(batches))].reshape(-1)
        start = self.num_samples * self.rank
        return iter(indices[start:start + self.num_samples].tolist())

    def __len__(self) -> int:
        return self.num_samples


class SampleSeedSampler(Sampler):
    """Wraps a sampler to yield ``(index, (seed, epoch, rank, position))``: the per-sample seed
    a dataset with ``accepts_sample_seed`` turns into ``results['rng']``."""

    def __init__(self, sampler, seed: int = 0, rank: int = 0):
        self.sampler = sampler
        self.seed = seed
        self.rank = rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __iter__(self):
        for position, index in enumerate(self.sampler):
            yield index, (self.seed, self.epoch, self.rank, position)

    def __len__(self) -> int:
        return len(self.sampler)


def worker_init_fn(worker_id: int, num_workers: int, rank: int, seed: int) -> None:
    """Seed a loader worker from seed + rank + worker id (mmdet formula); one cv2 thread each."""
    worker_seed = num_workers * rank + worker_id + seed
    np.random.seed(worker_seed)
    random.seed(worker_seed)
    torch.manual_seed(worker_seed)
    cv2.setNumThreads(0)


def build_dataloader(dataset, samples_per_gpu: int, workers_per_gpu: int, shuffle: bool = True,
                     seed: int = 0, dist: bool = False, rank: Optional[int] = None,
                     world_size: Optional[int] = None, size_divisor: int = 32,
                     pin_memory: Optional[bool] = None, persistent_workers: bool = True,
                     **kwargs) -> DataLoader:
    """A DataLoader of ``collate`` batches of ``samples_per_gpu`` images for this process.

    shuffle: aspect-ratio grouped, (seed, epoch)-shuffled batches (``GroupSampler`` or, when
    dist, ``DistributedGroupSampler``); call ``loader.sampler.set_epoch(epoch)`` every epoch.
    shuffle=False: dataset order (testing; when dist, torch's DistributedSampler without
    shuffling, which pads with repeats). Workers persist across epochs when workers_per_gpu > 0
    and are seeded from seed + rank + worker id. pin_memory defaults to "CUDA available".
    Extra kwargs go to torch's DataLoader.
    """
    if dist:
        dist_on = torch.distributed.is_available() and torch.distributed.is_initialized()
        rank = rank if rank is not None else (torch.distributed.get_rank() if dist_on else 0)
        world_size = world_size if world_size is not None else (
            torch.distributed.get_world_size() if dist_on else 1)
        sampler = (DistributedGroupSampler(dataset, samples_per_gpu, world_size, rank, seed)
                   if shuffle else
                   DistributedSampler(dataset, world_size, rank, shuffle=False))
    else:
        rank = 0
        sampler = GroupSampler(dataset, samples_per_gpu, seed) if shuffle else \
            SequentialSampler(dataset)
    if getattr(dataset, "accepts_sample_seed", False):
        sampler = SampleSeedSampler(sampler, seed, rank)
    if pin_memory is None:
        pin_memory = torch.cuda.is_available()
    init_fn = (partial(worker_init_fn, num_workers=workers_per_gpu, rank=rank, seed=seed)
               if workers_per_gpu > 0 else None)
    return DataLoader(dataset, batch_size=samples_per_gpu, sampler=sampler,
                      num_workers=workers_per_gpu,
                      collate_fn=partial(collate, size_divisor=size_divisor),
                      pin_memory=pin_memory, worker_init_fn=init_fn,
                      persistent_workers=persistent_workers and workers_per_gpu > 0,
                      drop_last=False, **kwargs)


def build_test_dataloader(dataset, samples_per_gpu: int = 1, workers_per_gpu: int = 2,
                          dist: bool = False, **kwargs) -> DataLoader:
    """``build_dataloader`` in dataset order (no shuffling, no grouping)."""
    return build_dataloader(dataset, samples_per_gpu, workers_per_gpu, shuffle=False, dist=dist,
                            **kwargs)
