import glob
import json
import os
import random
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist

from detzoo.engine import load_checkpoint, train_detector
from detzoo.engine.trainer import parse_losses
from detzoo.errors import ConfigError, DetzooError
from engine_helpers import TinyDataset, TinyDetector, consume_rng_eval, ensure_build_dataloader, tiny_cfg


@pytest.fixture(autouse=True)
def _loader(monkeypatch):
    ensure_build_dataloader(monkeypatch)


def _datasets():
    return TinyDataset(8, seed=0), TinyDataset(4, seed=1)


def _model(init_seed=0, **kwargs):
    torch.manual_seed(init_seed)
    return TinyDetector(**kwargs)


def _json_lines(work_dir):
    lines = []
    for path in sorted(glob.glob(os.path.join(work_dir, "*.log.json"))):
        with open(path) as f:
            lines += [json.loads(line) for line in f]
    return lines


def _assert_same_checkpoint(path_a, path_b):
    a, b = load_checkpoint(path_a), load_checkpoint(path_b)
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    for index, state in a["optimizer"]["state"].items():
        assert torch.equal(state["momentum_buffer"], b["optimizer"]["state"][index]["momentum_buffer"])
    assert (a["meta"]["epoch"], a["meta"]["iter"]) == (b["meta"]["epoch"], b["meta"]["iter"])


class Interrupted(Exception):
    pass


def _eval_then_crash(model, dataset):
    consume_rng_eval(model, dataset)
    raise Interrupted


def test_parse_losses_sums_lists_and_only_loss_keys():
    losses = {"loss_cls": [torch.tensor(1.0), torch.tensor([2.0, 4.0])],
              "loss_bbox": torch.tensor([0.25, 0.75]), "acc": torch.tensor(90.0)}
    total, log_vars = parse_losses(losses)
    assert float(total) == pytest.approx(1.0 + 3.0 + 0.5)  # list: sum of means; tensor: mean
    assert float(log_vars["acc"]) == 90.0 and float(log_vars["loss"]) == pytest.approx(4.5)
    with pytest.raises(DetzooError, match="no key containing 'loss'"):
        parse_losses({"acc": torch.tensor(1.0)})


def test_resume_continues_exactly(tmp_path):
    """2 epochs in one go == 1 epoch, crash, resume, 1 epoch (dropout, noisy data, warmup
    crossing the epoch boundary and a step at epoch 1 all depend on the restored state)."""
    cfg = tiny_cfg()
    train_detector(_model(), _datasets(), cfg, tmp_path / "a", seed=3, evaluate_fn=consume_rng_eval,
                   timestamp="full")
    with pytest.raises(Interrupted):
        train_detector(_model(), _datasets(), cfg, tmp_path / "b", seed=3, evaluate_fn=_eval_then_crash,
                       timestamp="part1")
    assert glob.glob(str(tmp_path / "b" / "epoch_*.pth")) == [str(tmp_path / "b" / "epoch_1.pth")]
    random.random(), np.random.rand(), torch.rand(3)  # a fresh process would be in another state
    # a different initialisation: everything must come from the checkpoint
    train_detector(_model(init_seed=99), _datasets(), cfg, tmp_path / "b", seed=3,
                   resume_from=str(tmp_path / "b" / "epoch_1.pth"), evaluate_fn=consume_rng_eval,
                   timestamp="part2")
    _assert_same_checkpoint(tmp_path / "a" / "epoch_2.pth", tmp_path / "b" / "epoch_2.pth")
    second_epoch = [(l["iter"], l["loss"], l["lr"]) for l in _json_lines(tmp_path / "b")
                    if l.get("mode") == "train" and l["epoch"] == 2]
    assert second_epoch == [(l["iter"], l["loss"], l["lr"]) for l in _json_lines(tmp_path / "a")
                            if l.get("mode") == "train" and l["epoch"] == 2]

    # control: without the RNG state the resumed run diverges, so the test above can fail
    stripped = load_checkpoint(tmp_path / "b" / "epoch_1.pth")
    del stripped["rng"]
    os.makedirs(tmp_path / "c")
    torch.save(stripped, tmp_path / "c" / "epoch_1.pth")
    train_detector(_model(), _datasets(), cfg, tmp_path / "c", seed=3, resume_from="auto",
                   evaluate_fn=consume_rng_eval)
    a = load_checkpoint(tmp_path / "a" / "epoch_2.pth")["state_dict"]
    c = load_checkpoint(tmp_path / "c" / "epoch_2.pth")["state_dict"]
    assert not torch.equal(a["head.weight"], c["head.weight"])


def test_nan_loss_stops_without_checkpointing_bad_weights(tmp_path):
    model = _model(nan_at=5)  # call 5 = epoch 2, iteration 2 of 4
    with pytest.raises(DetzooError) as info:
        train_detector(model, _datasets(), tiny_cfg(), tmp_path, evaluate_fn=consume_rng_eval)
    message = str(info.value)
    assert "epoch 2, iteration 2/4" in message and "loss_bbox = nan" in message
    assert "epoch_1.pth" in message  # the last good checkpoint is named
    assert sorted(os.path.basename(p) for p in glob.glob(str(tmp_path / "*.pth"))) == ["epoch_1.pth", "latest.pth"]
    assert all(torch.isfinite(p).all() for p in model.parameters())  # the NaN step was not applied

    with pytest.raises(DetzooError, match="epoch 1, iteration 1/4"):
        train_detector(_model(nan_at=0), _datasets(), tiny_cfg(), tmp_path / "first")
    assert not glob.glob(str(tmp_path / "first" / "*.pth"))


def test_non_finite_weights_are_not_checkpointed(tmp_path):
    # the last iteration of epoch 1 leaves an inf bias although its loss was finite
    with pytest.raises(DetzooError, match=r"non-finite weights after epoch 1 \(head.bias\)"):
        train_detector(_model(poison_at=3), _datasets(), tiny_cfg(), tmp_path)
    assert not glob.glob(str(tmp_path / "*.pth"))


def test_logs_have_mmdetection_json_lines(tmp_path):
    config_module = pytest.importorskip("detzoo.config")
    cfg = config_module.Config(tiny_cfg())
    train_detector(_model(), _datasets(), cfg, tmp_path, evaluate_fn=consume_rng_eval, timestamp="t")
    lines = [json.loads(line) for line in (tmp_path / "t.log.json").read_text().splitlines()]
    assert lines[0]["config"] == cfg.pretty_text and lines[0]["seed"] == 0
    train = [l for l in lines if l.get("mode") == "train"]
    val = [l for l in lines if l.get("mode") == "val"]
    assert [(l["epoch"], l["iter"]) for l in train] == [(1, 2), (1, 4), (2, 2), (2, 4)]  # interval 2
    required = {"mode", "epoch", "iter", "lr", "loss_cls", "loss_bbox", "acc", "loss", "time",
                "data_time", "memory", "grad_norm"}
    assert all(required <= set(l) for l in train)
    # lr 0.02 scaled to 0.0025 (batch 2 of 16); the line's lr is its last iteration's:
    # global iteration 1 of a 6-iteration linear warmup from 0.001
    assert train[0]["lr"] == pytest.approx(0.0025 * (1 - (1 - 1 / 6) * 0.999), rel=1e-5)
    # epoch 2 (after step 1), global iteration 7: warmup over -> 0.1 x 0.0025
    assert train[3]["lr"] == pytest.approx(0.00025, rel=1e-5)
    assert [(l["epoch"], l["iter"]) for l in val] == [(1, 4), (2, 4)]
    assert all({"bbox_mAP", "bbox_mAP_50", "bbox_mAP_copypaste"} <= set(l) for l in val)
    text = (tmp_path / "t.log").read_text()
    assert "lr scaled: 0.02 x 2/16 = 0.0025" in text and "Epoch [2][4/4]\tlr: 2.500e-04, eta: " in text
    meta = load_checkpoint(tmp_path / "epoch_2.pth")["meta"]
    assert meta["config"] == cfg.pretty_text and meta["CLASSES"] == ("cat", "dog")


def test_checkpoint_cadence_best_and_cleanup(tmp_path):
    cfg = tiny_cfg(runner=dict(type="EpochBasedRunner", max_epochs=3), checkpoint_config=dict(interval=2),
                   evaluation=dict(interval=1, save_best="auto"))
    scores = iter([0.1, 0.3, 0.2])
    result = train_detector(_model(), _datasets(), cfg, tmp_path,
                            evaluate_fn=lambda model, ds: {"bbox_mAP": next(scores)})
    names = sorted(os.path.basename(p) for p in glob.glob(str(tmp_path / "*.pth")))
    # interval 2 -> epoch 2; save_last -> epoch 3; the best (0.3) was after epoch 2
    assert names == ["best_bbox_mAP_epoch_2.pth", "epoch_2.pth", "epoch_3.pth", "latest.pth"]
    assert result["best_score"] == pytest.approx(0.3)
    assert load_checkpoint(tmp_path / "best_bbox_mAP_epoch_2.pth")["meta"]["hook_msgs"]["best_score"] == \
        pytest.approx(0.3)

    cfg = tiny_cfg(runner=dict(type="EpochBasedRunner", max_epochs=3), checkpoint_config=dict(max_keep_ckpts=1),
                   evaluation=dict(interval=1, save_best="val_loss"))
    losses = iter([0.5, 0.2, 0.3])  # a key with "loss" is minimised
    train_detector(_model(), _datasets(), cfg, tmp_path / "keep",
                   evaluate_fn=lambda model, ds: {"bbox_mAP": 0.0, "val_loss": next(losses)})
    names = sorted(os.path.basename(p) for p in glob.glob(str(tmp_path / "keep" / "*.pth")))
    assert names == ["best_val_loss_epoch_2.pth", "epoch_3.pth", "latest.pth"]


def test_load_from_sets_weights_only(tmp_path):
    source = _model(init_seed=5, dropout=0.0)
    torch.save({"meta": {"epoch": 12}, "state_dict": source.state_dict()}, tmp_path / "pretrained.pth")
    cfg = tiny_cfg(runner=dict(type="EpochBasedRunner", max_epochs=1),
                   optimizer=dict(type="SGD", lr=0.0, momentum=0.9))  # lr 0: parameters stay put
    model = _model(init_seed=6, dropout=0.0)
    result = train_detector(model, _datasets(), cfg, tmp_path / "wd", load_from=str(tmp_path / "pretrained.pth"))
    assert result["iter"] == 4  # started at epoch 0, unlike a resume of the epoch-12 file
    for (name, p), q in zip(model.named_parameters(), source.parameters()):
        assert torch.equal(p, q), name


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="IterBasedRunner"):
        train_detector(_model(), _datasets(), tiny_cfg(runner=dict(type="IterBasedRunner", max_iters=10)), tmp_path)
    cfg = tiny_cfg()
    del cfg["optimizer"]
    with pytest.raises(ConfigError, match="optimizer"):
        train_detector(_model(), _datasets(), cfg, tmp_path)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_distributed_single_process_saves_unwrapped_weights(tmp_path, monkeypatch):
    for key, value in dict(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()), RANK="0",
                           WORLD_SIZE="1", LOCAL_RANK="0").items():
        monkeypatch.setenv(key, value)
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        train_detector(model, _datasets(), tiny_cfg(runner=dict(type="EpochBasedRunner", max_epochs=1)),
                       tmp_path, distributed=True)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    raw = torch.load(tmp_path / "epoch_1.pth", weights_only=True)
    assert list(raw["state_dict"]) == list(before)  # no "module." / wrapper prefixes
    assert not torch.equal(raw["state_dict"]["head.weight"], before["head.weight"])
