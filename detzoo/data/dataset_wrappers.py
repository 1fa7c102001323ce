"""Dataset wrappers of MMDetection 2.x (mmdet/datasets/dataset_wrappers.py): ``ConcatDataset``
(e.g. VOC2007 + VOC2012 trainval) and ``RepeatDataset`` (short epochs on small datasets).

Both keep what the training loop reads from a dataset: ``CLASSES``, the aspect-ratio group
``flag`` (concatenated / tiled) and per-sample seeds (``dataset[(index, seed)]``, forwarded to
the wrapped datasets that accept them).
"""
from __future__ import annotations

import bisect
from typing import Sequence

import numpy as np
from torch.utils.data import Dataset

from ..errors import ConfigError, DataError


def _split_index(index):
    return index if isinstance(index, tuple) else (index, None)


def _forward(dataset, idx: int, seed):
    if seed is not None and getattr(dataset, "accepts_sample_seed", False):
        return dataset[(idx, seed)]
    return dataset[idx]


class ConcatDataset(Dataset):
    """The samples of ``datasets`` one after the other.

    Index ``i`` goes to the dataset whose range holds it (negative indices count from the end).
    All datasets must have the same CLASSES (mmdet silently takes the first one's).
    Attributes: datasets, CLASSES, cumulative_sizes, flag (concatenated; None unless every
    dataset has one).
    """

    accepts_sample_seed = True

    def __init__(self, datasets: Sequence):
        self.datasets = list(datasets)
        if not self.datasets:
            raise DataError("ConcatDataset: no datasets given")
        self.CLASSES = tuple(getattr(self.datasets[0], "CLASSES", ()))
        for k, ds in enumerate(self.datasets[1:], 1):
            if tuple(getattr(ds, "CLASSES", ())) != self.CLASSES:
                raise DataError(f"ConcatDataset: dataset {k} ({ds!r}) has classes "
                                f"{tuple(getattr(ds, 'CLASSES', ()))}, dataset 0 has {self.CLASSES}")
        self.cumulative_sizes = np.cumsum([len(ds) for ds in self.datasets]).tolist()
        flags = [getattr(ds, "flag", None) for ds in self.datasets]
        self.flag = (np.concatenate([np.asarray(f) for f in flags])
                     if all(f is not None for f in flags) else None)

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def locate(self, index: int) -> tuple[int, int]:
        """(dataset number, index inside that dataset) of concatenated index ``index``."""
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"ConcatDataset index {index} out of range for {len(self)} samples")
        which = bisect.bisect_right(self.cumulative_sizes, index)
        return which, index - (self.cumulative_sizes[which - 1] if which else 0)

    def __getitem__(self, index):
        index, seed = _split_index(index)
        which, local = self.locate(index)
        return _forward(self.datasets[which], local, seed)

    def get_ann_info(self, index: int) -> dict:
        which, local = self.locate(index)
        return self.datasets[which].get_ann_info(local)

    def __repr__(self) -> str:
        return f"ConcatDataset({', '.join(repr(ds) for ds in self.datasets)})"


class RepeatDataset(Dataset):
    """``dataset`` repeated ``times`` times: ``len = times * len(dataset)``, index ``i`` is sample
    ``i % len(dataset)``; flag is tiled. One "epoch" then covers the data ``times`` times."""

    accepts_sample_seed = True

    def __init__(self, dataset, times: int):
        if isinstance(times, bool) or not isinstance(times, (int, np.integer)) or times < 1:
            raise ConfigError(f"RepeatDataset: times must be a positive integer, got {times!r}")
        self.dataset = dataset
        self.times = int(times)
        self.CLASSES = tuple(getattr(dataset, "CLASSES", ()))
        self._ori_len = len(dataset)
        flag = getattr(dataset, "flag", None)
        self.flag = None if flag is None else np.tile(np.asarray(flag), self.times)

    def __len__(self) -> int:
        return self.times * self._ori_len

    def __getitem__(self, index):
        index, seed = _split_index(index)
        if not -len(self) <= index < len(self):
            raise IndexError(f"RepeatDataset index {index} out of range for {len(self)} samples")
        return _forward(self.dataset, index % self._ori_len, seed)

    def get_ann_info(self, index: int) -> dict:
        return self.dataset.get_ann_info(index % self._ori_len)

    def __repr__(self) -> str:
        return f"RepeatDataset({self.dataset!r}, times={self.times})"
