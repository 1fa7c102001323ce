"""Distributed training / testing on this CPU: 2 processes (gloo, launched with torchrun) against
single-process references computed here.

What must hold for "2 processes x 1 image == 1 process x 2 images":
  * the same images per step: the reference's batch t is (rank 0's image t, rank 1's image t) of
    DistributedGroupSampler, fed through a loader built in this file;
  * per-image normalised losses (the test detector averages per image), so the mean over the
    2-image batch equals the average DDP takes of the per-rank gradients;
  * no batch statistics across images: BN frozen (norm_eval), or SyncBN, whose statistics over
    the union batch are exactly the single-process BN's;
  * deterministic data (no random pipeline step) and model (no dropout).

The file is also the worker: ``torchrun --nproc_per_node=2 test_distributed.py OUT_DIR DATA_JSON``.
"""
from __future__ import annotations

import glob
import json
import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
IMG = 64
CLASSES = ("circle", "square", "triangle", "star")


# --- shared by the worker and the references ---------------------------------------------------

class TinyShapesDetector(nn.Module):
    """conv-BN-conv-BN-pool-linear "detector": regresses each image's first box (divided by the
    image size) and classifies its label; both losses are means over images."""

    class_names = CLASSES

    def __init__(self, norm_eval: bool) -> None:
        super().__init__()
        self.norm_eval = norm_eval
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU(),
                                  nn.Conv2d(8, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU())
        self.head = nn.Linear(8, 4 + len(CLASSES))

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self.norm_eval:  # mmdet norm_eval: BN layers use their running statistics
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def loss(self, batch: dict) -> dict:
        out = self.head(self.body(batch["img"]).mean((2, 3)))
        box_target = torch.stack([b[0] for b in batch["gt_bboxes"]]) / IMG
        labels = torch.stack([lab[0] for lab in batch["gt_labels"]])
        return {"loss_bbox": F.l1_loss(out[:, :4], box_target), "loss_cls": F.cross_entropy(out[:, 4:], labels)}


def _pipelines():
    from detzoo.data.transforms import (Collect, DefaultFormatBundle, LoadAnnotations, LoadImageFromFile,
                                        MultiScaleFlipAug, Normalize, Pad, RandomFlip, Resize)

    norm = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
    train = [dict(type=LoadImageFromFile), dict(type=LoadAnnotations, with_bbox=True),
             dict(type=Resize, img_scale=(IMG, IMG), keep_ratio=True), dict(type=RandomFlip, flip_ratio=0.0),
             dict(type=Normalize, **norm), dict(type=Pad, size_divisor=32), dict(type=DefaultFormatBundle),
             dict(type=Collect, keys=["img", "gt_bboxes", "gt_labels"])]
    test = [dict(type=LoadImageFromFile),
            dict(type=MultiScaleFlipAug, img_scale=(IMG, IMG), flip=False,
                 transforms=[dict(type=Resize, keep_ratio=True), dict(type=RandomFlip), dict(type=Normalize, **norm),
                             dict(type=Pad, size_divisor=32), dict(type=DefaultFormatBundle),
                             dict(type=Collect, keys=["img"])])]
    return train, test


def _datasets(data: dict):
    from detzoo.config import instantiate
    from detzoo.data import CocoDataset

    train_pipe, test_pipe = _pipelines()
    prefix = data["img_dir"] + os.sep
    train = instantiate(dict(type=CocoDataset, ann_file=data["train_ann"], img_prefix=prefix, classes=CLASSES,
                             pipeline=train_pipe))
    val = instantiate(dict(type=CocoDataset, ann_file=data["val_ann"], img_prefix=prefix, classes=CLASSES,
                           pipeline=test_pipe, test_mode=True))
    return train, val


def _cfg(samples_per_gpu: int, **extra) -> dict:
    cfg = dict(
        data=dict(samples_per_gpu=samples_per_gpu, workers_per_gpu=0),
        optimizer=dict(type="SGD", lr=0.4, momentum=0.9, weight_decay=1e-4),
        optimizer_config=dict(grad_clip=dict(max_norm=35, norm_type=2)),
        lr_config=dict(policy="step", warmup="linear", warmup_iters=3, warmup_ratio=0.1, step=[1]),
        runner=dict(type="EpochBasedRunner", max_epochs=2),
        checkpoint_config=dict(interval=2),
        log_config=dict(interval=2),
    )
    cfg.update(extra)
    return cfg


def _model(norm_eval: bool) -> TinyShapesDetector:
    torch.manual_seed(0)
    return TinyShapesDetector(norm_eval)


def _quickstart_detector():
    from detzoo.config import load_config
    from detzoo.models.builder import build_detector

    torch.manual_seed(0)
    return build_detector(load_config("faster_rcnn_r18_fpn_quickstart")["model"], class_names=CLASSES).eval()


def _syncbn_input(rank: int) -> torch.Tensor:
    """Rank ``rank``'s half of a fixed [4, 3, 5, 5] batch (different statistics per half)."""
    full = torch.randn(4, 3, 5, 5, generator=torch.Generator().manual_seed(7)) * torch.tensor([1.0, 2.0, 0.5]).view(
        1, 3, 1, 1) + torch.arange(4.0).view(4, 1, 1, 1)
    return full if rank is None else full[2 * rank:2 * rank + 2]


def _syncbn_target(x: torch.Tensor) -> torch.Tensor:
    return torch.linspace(-1, 1, x.numel()).view_as(x)


# --- the worker ------------------------------------------------------------------------------

def worker(out_dir: str, data_json: str) -> None:
    from detzoo.apis.test import run_test
    from detzoo.engine import train_detector
    from detzoo.engine.dist import SyncBatchNorm, destroy_dist, get_dist_info, init_dist

    with open(data_json) as f:
        data = json.load(f)
    rank, world_size = init_dist("gloo")
    assert world_size == 2
    train, val = _datasets(data)
    train_detector(_model(norm_eval=True), train, _cfg(1), os.path.join(out_dir, "frozen"), distributed=True,
                   timestamp="run")
    train_detector(_model(norm_eval=False), train, _cfg(1, sync_bn=True), os.path.join(out_dir, "syncbn"),
                   distributed=True, timestamp="run")

    bn = SyncBatchNorm(3, momentum=0.3)
    x = _syncbn_input(rank).requires_grad_(True)
    out = bn(x)
    (out * _syncbn_target(_syncbn_input(None))[2 * rank:2 * rank + 2]).sum().backward()
    torch.save({"out": out.detach(), "grad_x": x.grad, "grad_w": bn.weight.grad, "grad_b": bn.bias.grad,
                "running_mean": bn.running_mean, "running_var": bn.running_var},
               os.path.join(out_dir, f"syncbn_unit_{rank}.pt"))

    results = run_test(_quickstart_detector(), val, progress=False)
    if get_dist_info()[0] == 0:
        torch.save([(r.boxes, r.scores, r.labels) for r in results], os.path.join(out_dir, "test_results.pt"))
    destroy_dist()


# --- the tests -------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def shapes_small(tmp_path_factory):
    from detzoo.data import make_shapes_dataset

    root = tmp_path_factory.mktemp("shapes64")
    data = make_shapes_dataset(str(root), num_train=8, num_val=5, img_size_range=(IMG, IMG), seed=3,
                               with_masks=False, max_objects=2)
    path = root / "data.json"
    path.write_text(json.dumps({k: data[k] for k in ("train_ann", "val_ann", "img_dir")}))
    return {k: data[k] for k in ("train_ann", "val_ann", "img_dir")}, str(path)


@pytest.fixture(scope="module")
def two_process_run(shapes_small, tmp_path_factory):
    """Runs the worker once in 2 gloo processes under torchrun; returns its output folder."""
    out = tmp_path_factory.mktemp("dist_out")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=HERE + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for _ in range(2):  # the free port may be taken between choosing and binding it: retry once
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
               f"--master_port={_free_port()}", os.path.abspath(__file__), str(out), shapes_small[1]]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        if proc.returncode == 0 or "address already in use" not in (proc.stdout + proc.stderr).lower():
            break
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return out


class PairedBatches(torch.utils.data.Sampler):
    """Single-process batches [rank 0's index t, rank 1's index t] of a 2-rank, 1-image-per-GPU
    DistributedGroupSampler, so both runs see the same images at every step."""

    def __init__(self, dataset, seed: int = 0) -> None:
        from detzoo.data.loader import DistributedGroupSampler

        self.ranks = [DistributedGroupSampler(dataset, 1, 2, r, seed) for r in range(2)]

    def set_epoch(self, epoch: int) -> None:
        for s in self.ranks:
            s.set_epoch(epoch)

    def __iter__(self):
        return iter([[a, b] for a, b in zip(*[list(s) for s in self.ranks])])

    def __len__(self) -> int:
        return len(self.ranks[0])


def _reference(tmp_path, monkeypatch, data, norm_eval: bool, name: str) -> dict:
    from detzoo.data.loader import collate
    from detzoo.engine import Trainer, load_checkpoint, train_detector

    train, _ = _datasets(data)
    monkeypatch.setattr(Trainer, "_build_loader", lambda self: torch.utils.data.DataLoader(
        self.train_dataset, batch_sampler=PairedBatches(self.train_dataset), collate_fn=collate))
    train_detector(_model(norm_eval), train, _cfg(2), tmp_path / name, timestamp="run")
    return load_checkpoint(str(tmp_path / name / "epoch_2.pth"))["state_dict"]


def _assert_close_state(dist_path, reference: dict) -> None:
    from detzoo.engine import load_checkpoint

    got = load_checkpoint(str(dist_path))["state_dict"]
    assert got.keys() == reference.keys()
    initial = _model(True).state_dict()
    moved = 0
    for key, value in reference.items():
        torch.testing.assert_close(got[key], value, rtol=1e-4, atol=1e-5, msg=key)
        if value.is_floating_point() and not torch.allclose(value, initial[key]):
            moved += 1
    assert moved >= 4  # the weights did train (so equality is not trivially the initial state)


def _train_lines(work_dir) -> list:
    with open(os.path.join(work_dir, "run.log.json")) as f:
        return [json.loads(line) for line in f if '"mode": "train"' in line]


def test_two_processes_equal_one_process_frozen_bn(two_process_run, shapes_small, tmp_path, monkeypatch):
    reference = _reference(tmp_path, monkeypatch, shapes_small[0], norm_eval=True, name="ref")
    _assert_close_state(two_process_run / "frozen" / "epoch_2.pth", reference)
    assert [os.path.basename(p) for p in glob.glob(str(two_process_run / "frozen" / "epoch_*.pth"))] == [
        "epoch_2.pth"]
    # rank 0 alone logs (both ranks share the timestamp: a second writer would double the lines);
    # the logged losses are averaged over ranks: equal to the reference's losses of the union batch
    ref_lines, dist_lines = _train_lines(tmp_path / "ref"), _train_lines(two_process_run / "frozen")
    assert len(ref_lines) == len(dist_lines) == 4
    for ref, got in zip(ref_lines, dist_lines):
        assert got["loss"] == pytest.approx(ref["loss"], rel=1e-4)
        # throughput: 2 processes x 1 image per iteration / the logged mean iteration time
        assert got["imgs_per_s"] == pytest.approx(2 / got["time"], rel=1e-3)
        assert ref["imgs_per_s"] == pytest.approx(2 / ref["time"], rel=1e-3)


def test_sync_bn_training_equals_single_process_bn(two_process_run, shapes_small, tmp_path, monkeypatch):
    """sync_bn=True in 2 processes == plain BN (train mode) over the 2-image batch, running
    statistics included."""
    reference = _reference(tmp_path, monkeypatch, shapes_small[0], norm_eval=False, name="ref_bn")
    _assert_close_state(two_process_run / "syncbn" / "epoch_2.pth", reference)
    with open(two_process_run / "syncbn" / "run.log") as f:
        assert "SyncBN: 2 batch-norm layers synchronise over 2 processes" in f.read()


def test_sync_bn_statistics_and_gradients_match_union_batch(two_process_run):
    full = _syncbn_input(None).requires_grad_(True)
    bn = nn.BatchNorm2d(3, momentum=0.3)
    out = bn(full)
    (out * _syncbn_target(full)).sum().backward()
    ranks = [torch.load(two_process_run / f"syncbn_unit_{r}.pt") for r in range(2)]
    torch.testing.assert_close(torch.cat([r["out"] for r in ranks]), out.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.cat([r["grad_x"] for r in ranks]), full.grad, rtol=1e-5, atol=1e-5)
    # DDP would average the per-rank parameter gradients; each holds its shard's part: they sum
    torch.testing.assert_close(ranks[0]["grad_w"] + ranks[1]["grad_w"], bn.weight.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ranks[0]["grad_b"] + ranks[1]["grad_b"], bn.bias.grad, rtol=1e-5, atol=1e-5)
    for r in ranks:
        torch.testing.assert_close(r["running_mean"], bn.running_mean)
        torch.testing.assert_close(r["running_var"], bn.running_var)  # unbiased over the 4 images


def test_distributed_test_gathers_results_in_dataset_order(two_process_run, shapes_small):
    from detzoo.apis.test import run_test

    _, val = _datasets(shapes_small[0])
    single = run_test(_quickstart_detector(), val, progress=False)
    gathered = torch.load(two_process_run / "test_results.pt")
    assert len(gathered) == len(single) == 5  # 5 images on 2 ranks: the padded repeat is dropped
    assert sum(len(r) for r in single) > 0
    for (boxes, scores, labels), ref in zip(gathered, single):
        torch.testing.assert_close(boxes, ref.boxes, rtol=1e-4, atol=1e-3)
        torch.testing.assert_close(scores, ref.scores, rtol=1e-4, atol=1e-5)
        assert torch.equal(labels, ref.labels)


def test_single_process_sync_bn_falls_back_to_plain_bn(tmp_path, shapes_small):
    """SyncBN layers (norm_cfg type SyncBN) in one process: reverted to plain BN, with a log line,
    and trained like plain BN."""
    from detzoo.engine import load_checkpoint, train_detector

    train, _ = _datasets(shapes_small[0])
    cfg = _cfg(2, runner=dict(type="EpochBasedRunner", max_epochs=1), checkpoint_config=dict(interval=1))
    plain = _model(norm_eval=False)
    synced = _model(norm_eval=False)
    synced.body[1] = nn.SyncBatchNorm(8)
    synced.body[4] = nn.SyncBatchNorm(8)
    synced.load_state_dict(plain.state_dict())
    train_detector(plain, train, cfg, tmp_path / "plain", timestamp="run")
    train_detector(synced, train, cfg, tmp_path / "sync", timestamp="run")
    a = load_checkpoint(str(tmp_path / "plain" / "epoch_1.pth"))["state_dict"]
    b = load_checkpoint(str(tmp_path / "sync" / "epoch_1.pth"))["state_dict"]
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=0, msg=key)
    with open(tmp_path / "sync" / "run.log") as f:
        assert "single process: plain batch norm (2 SyncBN layers reverted)" in f.read()


if __name__ == "__main__":
    worker(sys.argv[1], sys.argv[2])
