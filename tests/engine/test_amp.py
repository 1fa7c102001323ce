"""Mixed precision in the trainer (CPU: bf16 autocast) and the float32 path against a hand loop."""
import json
import math
import os

import pytest
import torch

from detzoo.engine import load_checkpoint, train_detector
from detzoo.engine.amp import AmpContext, amp_requested
from detzoo.errors import ConfigError
from engine_helpers import TinyDataset, TinyDetector, ensure_build_dataloader, tiny_cfg


@pytest.fixture(autouse=True)
def _loader(monkeypatch):
    ensure_build_dataloader(monkeypatch)


class CleanDataset(TinyDataset):
    """TinyDataset without the per-call noise: the same batch whatever the RNG state."""

    def __getitem__(self, i):
        sample = super().__getitem__(i)
        sample["img"] = torch.from_numpy(self.imgs[i])
        return sample


class RecordingDetector(TinyDetector):
    """Records whether autocast was on, and the dtype of the first convolution's output."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen = []

    def loss(self, batch):
        self.seen.append((torch.is_autocast_enabled("cpu"), self.conv(batch["img"]).dtype))
        return super().loss(batch)


def _model(cls=TinyDetector):
    torch.manual_seed(0)
    return cls(dropout=0.0)


def _cfg(epochs, **extra):
    settings = dict(optimizer=dict(type="SGD", lr=0.05, momentum=0.9, weight_decay=0.0), optimizer_config={},
                    lr_config=None, runner=dict(type="EpochBasedRunner", max_epochs=epochs),
                    checkpoint_config=dict(interval=epochs), log_config=dict(interval=1),
                    auto_scale_lr=dict(enable=False))
    settings.update(extra)
    return tiny_cfg(**settings)


def _train_lines(work_dir):
    with open(os.path.join(work_dir, "run.log.json")) as f:
        return [json.loads(line) for line in f if '"mode": "train"' in line]


def test_cpu_amp_runs_bf16_reduces_loss_keeps_fp32_finite_weights(tmp_path):
    model = _model(RecordingDetector)
    train_detector(model, CleanDataset(8), _cfg(4), tmp_path, amp=True, timestamp="run")
    assert model.seen and all(on and dtype == torch.bfloat16 for on, dtype in model.seen)
    losses = [line["loss"] for line in _train_lines(tmp_path)]
    assert len(losses) == 16
    assert sum(losses[-4:]) < 0.8 * sum(losses[:4])  # the last epoch's mean loss fell by >= 20%
    state = load_checkpoint(str(tmp_path / "epoch_4.pth"))["state_dict"]
    for key, value in state.items():
        if value.is_floating_point():
            assert value.dtype == torch.float32 and torch.isfinite(value).all(), key


def test_config_fp16_key_turns_amp_on(tmp_path):
    assert amp_requested({"fp16": dict(loss_scale=512.0)}) and amp_requested({"amp": True})
    assert not amp_requested({}) and not amp_requested({"amp": False})
    with pytest.raises(ConfigError, match="fp16"):
        amp_requested({"fp16": 512})
    model = _model(RecordingDetector)
    train_detector(model, CleanDataset(4), _cfg(1, fp16=dict(loss_scale="dynamic")), tmp_path, timestamp="run")
    assert all(on for on, _ in model.seen)
    with pytest.raises(ConfigError, match="loss_scale"):
        AmpContext("cuda", True, loss_scale=-1.0)


def test_float32_training_equals_a_hand_written_loop(tmp_path):
    """amp off: the trainer is plain float32 SGD (constant lr, no clipping) over the loader's
    batches, without autocast."""
    from detzoo.data import build_dataloader

    dataset = CleanDataset(8)
    model = _model(RecordingDetector)
    train_detector(model, dataset, _cfg(2), tmp_path, timestamp="run", seed=5)
    assert model.seen and not any(on for on, _ in model.seen)
    assert all(dtype == torch.float32 for _, dtype in model.seen)

    reference = _model()
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.05, momentum=0.9)
    loader = build_dataloader(dataset, 2, 0, shuffle=True, seed=5)
    for epoch in range(2):
        loader.sampler.set_epoch(epoch)
        for batch in loader:
            out = reference.loss(batch)
            loss = out["loss_cls"] + out["loss_bbox"][0] + out["loss_bbox"][1]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    trained = load_checkpoint(str(tmp_path / "epoch_2.pth"))["state_dict"]
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(trained[key], value, rtol=1e-6, atol=1e-7, msg=key)


def test_imgs_per_s_is_images_over_mean_iteration_time(tmp_path):
    train_detector(_model(), CleanDataset(8), _cfg(1, log_config=dict(interval=2)), tmp_path, timestamp="run")
    lines = _train_lines(tmp_path)
    assert len(lines) == 2
    for line in lines:  # 2 images per iteration, 1 process
        assert math.isfinite(line["imgs_per_s"]) and line["imgs_per_s"] == pytest.approx(2 / line["time"], rel=1e-4)
    with open(tmp_path / "run.log") as f:
        text = f.read()
    assert text.count("imgs_per_s: ") == 2


def test_amp_run_resumes_to_the_uninterrupted_weights(tmp_path):
    """bf16 autocast on CPU: 2 epochs in one go equal 1 epoch + resume + 1 epoch (the autocast
    state and the RNG streams come back from the checkpoint; there is no scaler on CPU)."""
    cfg = tiny_cfg(evaluation=dict(interval=100))

    torch.manual_seed(0)
    train_detector(TinyDetector(), TinyDataset(8), cfg, tmp_path / "full", seed=5, amp=True, validate=False)
    torch.manual_seed(0)
    one = dict(cfg, runner=dict(type="EpochBasedRunner", max_epochs=1))
    train_detector(TinyDetector(), TinyDataset(8), one, tmp_path / "split", seed=5, amp=True, validate=False)
    torch.manual_seed(99)  # a different init: everything must come from the checkpoint
    train_detector(TinyDetector(), TinyDataset(8), cfg, tmp_path / "split", seed=5, amp=True, validate=False,
                   resume_from=str(tmp_path / "split" / "epoch_1.pth"))
    a = load_checkpoint(tmp_path / "full" / "epoch_2.pth")["state_dict"]
    b = load_checkpoint(tmp_path / "split" / "epoch_2.pth")["state_dict"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert not torch.equal(a["head.weight"], load_checkpoint(tmp_path / "split" / "epoch_1.pth")["state_dict"]["head.weight"])
