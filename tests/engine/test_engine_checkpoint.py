import os
import random
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from detzoo import __version__
from detzoo.engine import checkpoint as ckpt_io
from detzoo.engine.checkpoint import (latest_checkpoint, load_checkpoint, load_model_weights,
                                      save_checkpoint, update_latest)
from detzoo.engine.lr_schedule import StepLrSchedule
from detzoo.errors import CheckpointError


class Small(nn.Module):
    class_names = ("a", "b")

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.bn = nn.BatchNorm1d(2)


class NotATensor:
    """A custom class: unpickling it needs arbitrary code, which weights-only loading refuses."""

    def __init__(self):
        self.payload = 1


def _trained(seed=0):
    torch.manual_seed(seed)
    model = Small()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model.bn(model.fc(torch.randn(4, 3))).sum().backward()
    optimizer.step()
    return model, optimizer


def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_round_trip_model_optimizer_scheduler_rng(tmp_path):
    model, optimizer = _trained()
    schedule = StepLrSchedule(0.1, step=[3], warmup="linear", warmup_iters=10, warmup_ratio=0.01)
    path = tmp_path / "epoch_2.pth"
    save_checkpoint(path, model, optimizer, schedule, meta={"epoch": 2, "iter": 20, "config": "x = 1\n"})
    expected_draws = (torch.rand(3), np.random.rand(2), random.random())

    checkpoint = load_checkpoint(path)
    meta = checkpoint["meta"]
    assert (meta["epoch"], meta["iter"], meta["config"]) == (2, 20, "x = 1\n")
    assert meta["CLASSES"] == ("a", "b") and meta["detzoo_version"] == __version__ and meta["time"]

    fresh, fresh_opt = _trained(seed=1)
    assert not _same_weights(model, fresh)
    load_model_weights(fresh, checkpoint)
    assert _same_weights(model, fresh)
    fresh_opt.load_state_dict(checkpoint["optimizer"])
    for p_old, p_new in zip(model.parameters(), fresh.parameters()):
        assert torch.equal(optimizer.state[p_old]["momentum_buffer"], fresh_opt.state[p_new]["momentum_buffer"])
    restored = StepLrSchedule(1.0, step=[1])
    restored.load_state_dict(checkpoint["scheduler"])
    assert restored.get_lr(0, 5) == schedule.get_lr(0, 5) and restored.get_lr(4, 50) == schedule.get_lr(4, 50)

    from detzoo.engine.seed import set_rng_state
    set_rng_state(checkpoint["rng"])
    draws = (torch.rand(3), np.random.rand(2), random.random())
    assert torch.equal(draws[0], expected_draws[0])
    assert np.array_equal(draws[1], expected_draws[1]) and draws[2] == expected_draws[2]


def test_failed_save_keeps_previous_file_and_leaves_no_temp(tmp_path, monkeypatch):
    model, optimizer = _trained()
    path = tmp_path / "epoch_1.pth"
    save_checkpoint(path, model, optimizer, meta={"epoch": 1})
    before = sorted(os.listdir(tmp_path))
    real_save = torch.save

    def disk_full(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a checkpoint")  # some bytes reach the disk, then ENOSPC
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    model2, optimizer2 = _trained(seed=3)
    with pytest.raises(CheckpointError, match="epoch_1.pth.*No space left"):
        save_checkpoint(path, model2, optimizer2, meta={"epoch": 2})
    monkeypatch.setattr(torch, "save", real_save)

    assert sorted(os.listdir(tmp_path)) == before  # no temp file left behind
    checkpoint = load_checkpoint(path)
    assert checkpoint["meta"]["epoch"] == 1
    fresh = Small()
    load_model_weights(fresh, checkpoint)
    assert _same_weights(fresh, model)


def test_ddp_prefix_is_stripped_on_save_and_load(tmp_path):
    model, _ = _trained()
    wrapped = nn.DataParallel(model)  # keys of the wrapper start with "module."
    assert all(k.startswith("module.") for k in wrapped.state_dict())
    save_checkpoint(tmp_path / "a.pth", wrapped)
    assert all(not k.startswith("module.") for k in load_checkpoint(tmp_path / "a.pth")["state_dict"])

    # an MMDetection-style file saved from a DDP model, and a bare prefixed state dict
    prefixed = OrderedDict(("module." + k, v) for k, v in model.state_dict().items())
    torch.save({"meta": {"epoch": 12}, "state_dict": prefixed}, tmp_path / "mmdet.pth")
    torch.save(prefixed, tmp_path / "bare.pth")
    for name in ("mmdet.pth", "bare.pth"):
        fresh = Small()
        load_model_weights(fresh, tmp_path / name)
        assert _same_weights(fresh, model)


def test_torchvision_reference_layout(tmp_path):
    model, _ = _trained()
    torch.save({"model": model.state_dict(), "epoch": 3}, tmp_path / "tv.pth")
    checkpoint = load_checkpoint(tmp_path / "tv.pth")
    assert checkpoint["epoch"] == 3 and checkpoint["meta"] == {}
    fresh = Small()
    load_model_weights(fresh, checkpoint)
    assert _same_weights(fresh, model)


@pytest.mark.parametrize("legacy", [False, True])
def test_pickled_objects_are_refused_with_explanation(tmp_path, legacy):
    model, _ = _trained()
    path = tmp_path / "old.pth"
    torch.save({"state_dict": model.state_dict(), "extra": NotATensor()}, path,
               _use_new_zipfile_serialization=not legacy)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    for part in (str(path), "NotATensor", "allow_pickle=True", "--unsafe-load", "arbitrary code"):
        assert part in message
    # the explicit opt-in loads it
    assert isinstance(load_checkpoint(path, weights_only=False)["extra"], NotATensor)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(CheckpointError, match=r"nope\.pth: file not found"):
        load_checkpoint(tmp_path / "nope.pth")
    model, _ = _trained()
    good = tmp_path / "good.pth"
    save_checkpoint(good, model)
    data = good.read_bytes()
    cases = {"trunc.pth": data[: len(data) // 2], "text.pth": b"not a checkpoint at all",
             "empty.pth": b""}
    legacy = tmp_path / "legacy.pth"
    torch.save({"state_dict": model.state_dict()}, legacy, _use_new_zipfile_serialization=False)
    assert load_checkpoint(legacy)["state_dict"].keys() == model.state_dict().keys()  # zoo files use it
    cases["trunc_legacy.pth"] = legacy.read_bytes()[:300]
    for name, payload in cases.items():
        (tmp_path / name).write_bytes(payload)
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(tmp_path / name)
        assert name in str(info.value)
        assert "corrupt" in str(info.value) or "empty" in str(info.value)
        assert "allow_pickle" not in str(info.value)  # a damaged file is not a pickle problem


def test_strict_load_reports_missing_unexpected_and_shapes(tmp_path):
    model, _ = _trained()
    state = model.state_dict()
    state["extra.weight"] = torch.zeros(1)
    del state["bn.bias"]
    state["fc.weight"] = torch.zeros(5, 3)
    target = Small()
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(CheckpointError) as info:
        load_model_weights(target, state)
    message = str(info.value)
    assert "1 missing keys (bn.bias)" in message
    assert "1 unexpected keys (extra.weight)" in message
    assert "fc.weight: checkpoint [5, 3] vs model [2, 3]" in message
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())  # untouched

    result = load_model_weights(target, state, strict=False)
    assert result.missing_keys == ["bn.bias"] and result.unexpected_keys == ["extra.weight"]
    assert result.mismatched_keys == [("fc.weight", (5, 3), (2, 3))]
    assert torch.equal(target.fc.bias, model.fc.bias)  # what fits was loaded


def test_latest_pointer(tmp_path):
    assert latest_checkpoint(tmp_path) is None
    model, _ = _trained()
    for n in (1, 2):
        save_checkpoint(tmp_path / f"epoch_{n}.pth", model, meta={"epoch": n})
        update_latest(tmp_path, tmp_path / f"epoch_{n}.pth")
    assert latest_checkpoint(tmp_path) == str(tmp_path / "epoch_2.pth")
    assert (tmp_path / ckpt_io.POINTER_FILE).read_text() == "epoch_2.pth"
    assert os.readlink(tmp_path / "latest.pth") == "epoch_2.pth"
    assert load_checkpoint(tmp_path / "latest.pth")["meta"]["epoch"] == 2
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    # without pointer and link, the highest epoch_<n>.pth wins (10 > 9 numerically)
    os.remove(tmp_path / ckpt_io.POINTER_FILE)
    os.remove(tmp_path / "latest.pth")
    for n in (9, 10):
        save_checkpoint(tmp_path / f"epoch_{n}.pth", model)
    assert latest_checkpoint(tmp_path) == str(tmp_path / "epoch_10.pth")
