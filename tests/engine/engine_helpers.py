"""A tiny detector, dataset and config for engine tests (imported by the test files)."""
from __future__ import annotations

import random
import sys
import types
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

CLASSES = ("cat", "dog")
IMG_SIZE = 32


class TinyDataset(torch.utils.data.Dataset):
    """``n`` images of 3x32x32 with one box each, in the sample format ``collate`` expects.

    ``__getitem__`` adds noise from numpy's and python's global RNGs, so a resumed run only
    matches the uninterrupted one if those generators are restored too.
    """

    CLASSES = CLASSES

    def __init__(self, n: int = 8, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.imgs = rng.normal(size=(n, 3, IMG_SIZE, IMG_SIZE)).astype(np.float32)
        xy = rng.uniform(0, 16, size=(n, 2))
        wh = rng.uniform(4, 16, size=(n, 2))
        self.boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
        self.labels = rng.integers(0, len(CLASSES), size=n)
        self.flag = np.zeros(n, dtype=np.uint8)  # one aspect-ratio group

    def __len__(self) -> int:
        return len(self.imgs)

    def __getitem__(self, i: int) -> dict:
        noise = np.random.normal(scale=0.1, size=self.imgs[i].shape).astype(np.float32)
        img = self.imgs[i] + noise * np.float32(random.random())
        shape = (IMG_SIZE, IMG_SIZE, 3)
        return {
            "img": torch.from_numpy(img),
            "img_metas": dict(filename=f"{i}.jpg", img_id=i, ori_shape=shape, img_shape=shape,
                              pad_shape=shape, scale_factor=np.ones(4, np.float32), flip=False,
                              flip_direction=None),
            "gt_bboxes": torch.from_numpy(self.boxes[i:i + 1]),
            "gt_labels": torch.from_numpy(self.labels[i:i + 1]),
        }


class TinyDetector(nn.Module):
    """conv-BN-dropout-linear "detector": regresses the first box and classifies its label.

    ``nan_at``: the (0-based) call of ``loss`` whose ``loss_bbox`` becomes NaN.
    ``poison_at``: the call after which the head's bias becomes inf (a finite loss, bad weights).
    """

    class_names = CLASSES

    def __init__(self, dropout: float = 0.5, nan_at: int | None = None, poison_at: int | None = None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(8, 4 + len(CLASSES))
        self.nan_at = nan_at
        self.poison_at = poison_at
        self.calls = 0

    def loss(self, batch: dict) -> dict:
        feat = F.relu(self.bn(self.conv(batch["img"]))).mean((2, 3))
        out = self.head(self.drop(feat))
        box_target = torch.stack([b[0] for b in batch["gt_bboxes"]]) / IMG_SIZE
        labels = torch.stack([lab[0] for lab in batch["gt_labels"]])
        loss_bbox = F.l1_loss(out[:, :4], box_target)
        if self.nan_at is not None and self.calls == self.nan_at:
            loss_bbox = loss_bbox * float("nan")
        if self.poison_at is not None and self.calls == self.poison_at:
            with torch.no_grad():
                self.head.bias.fill_(float("inf"))
        self.calls += 1
        loss_cls = F.cross_entropy(out[:, 4:], labels)
        acc = (out[:, 4:].argmax(1) == labels).float().mean() * 100
        # a list value (one term per "level") exercises the list summing of parse_losses
        return {"loss_cls": loss_cls, "loss_bbox": [0.5 * loss_bbox, 0.5 * loss_bbox], "acc": acc}


def tiny_cfg(**overrides) -> dict:
    """An MMDetection-2.x-shaped config for TinyDetector on TinyDataset(8): 4 iters/epoch."""
    cfg = dict(
        data=dict(samples_per_gpu=2, workers_per_gpu=0),
        optimizer=dict(type="SGD", lr=0.02, momentum=0.9, weight_decay=1e-4),
        optimizer_config=dict(grad_clip=dict(max_norm=35, norm_type=2)),
        lr_config=dict(policy="step", warmup="linear", warmup_iters=6, warmup_ratio=0.001, step=[1]),
        runner=dict(type="EpochBasedRunner", max_epochs=2),
        checkpoint_config=dict(interval=1),
        log_config=dict(interval=2),
        evaluation=dict(interval=1, metric="bbox"),
    )
    cfg.update(overrides)
    return cfg


def _fallback_build_dataloader(dataset, samples_per_gpu, workers_per_gpu, shuffle=True, seed=0,
                               dist=False):
    """Stand-in for detzoo.data.build_dataloader: (seed, epoch)-shuffled batches, stacked."""

    class EpochSampler(torch.utils.data.Sampler):
        def __init__(self):
            self.epoch = 0

        def set_epoch(self, epoch):
            self.epoch = epoch

        def __iter__(self):
            generator = torch.Generator().manual_seed(seed + self.epoch)
            return iter(torch.randperm(len(dataset), generator=generator).tolist())

        def __len__(self):
            return len(dataset)

    def collate(samples):
        batch = {"img": torch.stack([s["img"] for s in samples])}
        for key in samples[0]:
            if key != "img":
                batch[key] = [s[key] for s in samples]
        return batch

    return torch.utils.data.DataLoader(dataset, batch_size=samples_per_gpu, num_workers=workers_per_gpu,
                                       sampler=EpochSampler() if shuffle else None, collate_fn=collate)


def ensure_build_dataloader(monkeypatch) -> None:
    """Use detzoo.data.build_dataloader when it imports; else install a clearly-marked stand-in."""
    try:
        from detzoo.data import build_dataloader  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - the data package may be mid-edit
        warnings.warn(f"detzoo.data.build_dataloader unavailable ({exc!r}); using the test fallback")
        stub = types.ModuleType("detzoo.data")
        stub.build_dataloader = _fallback_build_dataloader
        monkeypatch.setitem(sys.modules, "detzoo.data", stub)


def consume_rng_eval(model, dataset) -> dict:
    """An evaluate_fn that draws from every global RNG (training must not notice)."""
    torch.rand(7)
    np.random.rand(3)
    random.random()
    score = float(model.head.weight.abs().mean())
    return {"bbox_mAP": score, "bbox_mAP_50": score / 2, "bbox_mAP_copypaste": f"{score:.3f}"}
