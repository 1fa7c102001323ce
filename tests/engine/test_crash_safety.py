"""Crash safety of training: SIGKILL + --resume, unreadable images, a full disk, partial files.

The resume tests run `detzoo train` in subprocesses (one thread each, so that the arithmetic is
deterministic) on a small generated shapes dataset with the quickstart Faster R-CNN.
"""
from __future__ import annotations

import errno
import glob
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from detzoo.data import CocoDataset, build_dataloader
from detzoo.data.synthetic import make_shapes_dataset
from detzoo.engine import load_checkpoint, train_detector
from detzoo.engine import checkpoint as ckpt_io
from detzoo.errors import CheckpointError, DataError, UnreadableImageError
from engine_helpers import TinyDataset, TinyDetector, consume_rng_eval, ensure_build_dataloader, tiny_cfg

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "configs" / "quickstart" / "faster_rcnn_r18_fpn_quickstart.py"


def _train_cmd(work_dir, *extra):
    return [sys.executable, "-m", "detzoo.cli.main", "train", str(QUICKSTART), "--work-dir", str(work_dir),
            "--no-validate", "--cfg-options", "runner.max_epochs=3", "max_epochs=3", "log_config.interval=1",
            "data.samples_per_gpu=2", "lr_config.warmup_iters=5", *extra]


def _env():
    return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=str(ROOT))


def _train_lines(work_dir):
    lines = []
    for path in glob.glob(os.path.join(work_dir, "*.log.json")):
        with open(path) as f:
            for line in f:
                if line.strip():
                    lines.append(json.loads(line))
    return [line for line in lines if line.get("mode") == "train"]


@pytest.fixture(scope="module")
def shapes_cwd(tmp_path_factory):
    """A folder holding data/quickstart/ (16 train images), the quickstart config's data_root."""
    root = tmp_path_factory.mktemp("shapes")
    make_shapes_dataset(str(root / "data" / "quickstart"), num_train=16, num_val=2,
                        img_size_range=(96, 128), max_objects=3)
    return root


def test_sigkill_mid_epoch_then_resume_ends_with_the_uninterrupted_weights(shapes_cwd, tmp_path):
    full, killed = tmp_path / "full", tmp_path / "killed"
    done = subprocess.run(_train_cmd(full), cwd=shapes_cwd, env=_env(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    epoch_len = max(l["iter"] for l in _train_lines(full) if l["epoch"] == 1)

    proc = subprocess.Popen(_train_cmd(killed), cwd=shapes_cwd, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if any(l["epoch"] == 2 and l["iter"] >= 2 for l in _train_lines(killed)):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be killed mid-epoch 2"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    reached = max(l["iter"] for l in _train_lines(killed) if l["epoch"] == 2)
    assert 2 <= reached < epoch_len  # really killed in the middle of epoch 2
    assert not (killed / "epoch_2.pth").exists() and (killed / "epoch_1.pth").is_file()
    # a save that the kill interrupted leaves a temp file: it must not disturb the resume
    (killed / ".epoch_2.pth.abcd1234.tmp").write_bytes(b"PK\x03\x04 truncated")

    resumed = subprocess.run(_train_cmd(killed, "--resume"), cwd=shapes_cwd, env=_env(), capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert not list(killed.glob(".*.tmp"))
    a = load_checkpoint(full / "epoch_3.pth")
    b = load_checkpoint(killed / "epoch_3.pth")
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    assert (a["meta"]["epoch"], a["meta"]["iter"]) == (b["meta"]["epoch"], b["meta"]["iter"]) == (3, 3 * epoch_len)
    # the resumed run logged epoch 2 again from its first iteration, with the same losses
    full_e3 = [(l["iter"], l["loss"]) for l in _train_lines(full) if l["epoch"] == 3]
    again_e3 = [(l["iter"], l["loss"]) for l in _train_lines(killed) if l["epoch"] == 3]
    assert full_e3 == again_e3 and len(full_e3) == epoch_len


def test_resume_auto_ignores_partial_files(tmp_path):
    ensure = TinyDetector()
    ckpt_io.save_checkpoint(tmp_path / "epoch_1.pth", ensure, meta={"epoch": 1, "iter": 4})
    ckpt_io.update_latest(tmp_path, tmp_path / "epoch_1.pth")
    (tmp_path / ".epoch_2.pth.x1y2z3.tmp").write_bytes(b"half a checkpoint")
    (tmp_path / ".latest.pth.123.abcdef01.tmp").write_bytes(b"")
    (tmp_path / "notes.tmp").write_text("not ours")
    assert ckpt_io.latest_checkpoint(tmp_path) == str(tmp_path / "epoch_1.pth")
    removed = sorted(os.path.basename(p) for p in ckpt_io.remove_partial_files(tmp_path))
    assert removed == [".epoch_2.pth.x1y2z3.tmp", ".latest.pth.123.abcdef01.tmp"]
    assert (tmp_path / "notes.tmp").exists()


# --- unreadable images ---------------------------------------------------------------------
def _dataset_with_broken_images(tmp_path, test_mode=False):
    out = make_shapes_dataset(str(tmp_path / "data"), num_train=8, num_val=1, img_size_range=(64, 64),
                              max_objects=2)
    images = sorted(Path(out["img_dir"]).glob("train_*.jpg"))
    images[1].write_bytes(b"")  # zero bytes
    data = bytearray(images[4].read_bytes())
    data[:64] = os.urandom(64)  # the JPEG header is gone
    images[4].write_bytes(bytes(data))
    pipeline = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", with_bbox=True),
                dict(type="Normalize", mean=[0, 0, 0], std=[1, 1, 1], to_rgb=False),
                dict(type="DefaultFormatBundle"), dict(type="Collect", keys=["img", "gt_bboxes", "gt_labels"])]
    dataset = CocoDataset(out["train_ann"], img_prefix=out["img_dir"] + "/", pipeline=pipeline, test_mode=test_mode)
    broken = {str(images[1]), str(images[4])}
    return dataset, broken


def _index_of(dataset, path):
    return next(i for i, info in enumerate(dataset.data_infos) if path.endswith(info["filename"]))


def test_unreadable_training_image_is_replaced_deterministically(tmp_path, caplog):
    dataset, broken = _dataset_with_broken_images(tmp_path)
    for path in broken:
        i = _index_of(dataset, path)
        with caplog.at_level("WARNING", logger="detzoo"):
            first = dataset[(i, 123)]
        assert first["skipped_images"] == [path]
        assert path in caplog.text and "skipped" in caplog.text
        again = dataset[(i, 123)]  # same seed, same substitute
        assert torch.equal(first["img"], again["img"])
        substitute = first["img_metas"]["filename"]
        assert substitute not in broken and substitute != path
    ok = dataset[(0, 1)]
    assert "skipped_images" not in ok


def test_unreadable_image_fails_clearly_in_test_mode(tmp_path):
    dataset, broken = _dataset_with_broken_images(tmp_path, test_mode=True)
    path = sorted(broken)[0]
    with pytest.raises(UnreadableImageError, match="cannot decode image .*" + os.path.basename(path)):
        dataset[_index_of(dataset, path)]


def test_all_images_unreadable_is_a_clear_error(tmp_path):
    dataset, _ = _dataset_with_broken_images(tmp_path)
    for path in Path(dataset.img_prefix).glob("train_*.jpg"):
        path.write_bytes(b"not an image")
    with pytest.raises(DataError, match="100 images in a row could not be read"):
        dataset[(0, 5)]


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_batches_carry_the_skipped_paths(tmp_path, workers):
    dataset, broken = _dataset_with_broken_images(tmp_path)
    loader = build_dataloader(dataset, samples_per_gpu=2, workers_per_gpu=workers, seed=0,
                              persistent_workers=False)
    loader.sampler.set_epoch(0)
    seen, draws = [], 0
    for batch in loader:
        seen += batch.get("skipped_images", [])
        draws += len(batch["img_metas"])
        assert all(meta["filename"] not in broken for meta in batch["img_metas"])
    # every index is drawn once per epoch (the groups are topped up by repeats), each broken
    # index is replaced once per draw, and a substitute can itself be broken
    order = [i for i, _ in loader.sampler]  # (index, sample seed) pairs of the epoch
    broken_names = {os.path.basename(p) for p in broken}
    broken_draws = sum(1 for i in order if dataset.data_infos[i]["filename"] in broken_names)
    assert set(seen) == broken and len(seen) >= broken_draws >= 2


def test_training_counts_skipped_images_in_the_log(tmp_path):
    dataset, broken = _dataset_with_broken_images(tmp_path)

    class BoxModel(TinyDetector):
        def loss(self, batch):  # TinyDetector regresses 32-px boxes; these images are 64 px
            batch = dict(batch, img=torch.nn.functional.avg_pool2d(batch["img"], 2),
                         gt_bboxes=[b[:1] / 2 for b in batch["gt_bboxes"]],
                         gt_labels=[lab[:1] % 2 for lab in batch["gt_labels"]])
            return super().loss(batch)

    cfg = tiny_cfg()
    cfg["log_config"] = dict(interval=1)
    train_detector(BoxModel(), dataset, cfg, tmp_path / "work", timestamp="t")
    lines = [json.loads(l) for l in (tmp_path / "work" / "t.log.json").read_text().splitlines()]
    counts = [l.get("skipped_images", 0) for l in lines if l.get("mode") == "train"]
    assert counts == sorted(counts) and counts[-1] >= 2 * len(broken) - 0  # cumulative, 2 epochs
    text = (tmp_path / "work" / "t.log").read_text()
    assert all(os.path.basename(p) in text for p in broken) and "unreadable" in text


# --- a full disk ---------------------------------------------------------------------------
def test_disk_full_while_saving_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    ensure_build_dataloader(monkeypatch)
    real_save = torch.save
    calls = {"n": 0}

    def save_then_fill_the_disk(obj, f, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the second epoch's checkpoint
            f.write(b"x" * 1000)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_then_fill_the_disk)
    torch.manual_seed(0)
    with pytest.raises(CheckpointError) as info:
        train_detector(TinyDetector(), TinyDataset(8), tiny_cfg(), tmp_path, evaluate_fn=consume_rng_eval)
    message = str(info.value)
    assert "epoch_2.pth" in message and "No space left on device" in message
    assert "MiB free" in message and "epoch_1.pth" in message and "--resume" in message
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix in (".pth", ".tmp") or p.name.startswith(".")) \
        == ["epoch_1.pth", "latest.pth"]
    assert ckpt_io.latest_checkpoint(tmp_path) == str(tmp_path / "epoch_1.pth")
    monkeypatch.setattr(torch, "save", real_save)
    previous = load_checkpoint(tmp_path / "epoch_1.pth")
    assert previous["meta"]["epoch"] == 1 and np.isfinite(
        sum(float(v.float().sum()) for v in previous["state_dict"].values()))
