"""benchmark: the timing protocol against a fake model whose forward takes known times, and the
command end to end on a tiny random-weight model."""
import json
import sys
import time

import pytest
import torch

from detzoo.cli.main import main
from detzoo.errors import ConfigError, DetzooError
from detzoo.tools.benchmark import time_inference


class SleepyModel(torch.nn.Module):
    """predict() sleeps the next duration of ``durations``; counts its calls."""

    def __init__(self, durations):
        super().__init__()
        self.durations = list(durations)
        self.calls = 0
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def predict(self, img, img_metas, rescale=True):
        assert rescale is True  # post-processing back to original pixels is part of the protocol
        time.sleep(self.durations[self.calls])
        self.calls += 1
        return []


def slow_batches(load_seconds):
    while True:
        time.sleep(load_seconds)  # data loading: must stay outside the clock
        yield {"img": torch.zeros(1, 3, 4, 4), "img_metas": [{}]}


def test_warmup_and_data_loading_are_not_timed():
    warm, counted = 0.15, 0.02
    model = SleepyModel([warm] * 5 + [counted] * 7)
    lines = []
    figures = time_inference(model, slow_batches(0.06), num_images=12, log_interval=4,
                             log=lines.append)
    assert model.calls == 12
    assert figures["timed_images"] == 7
    # 7 x 20 ms of forward (plus sleep overshoot on a busy machine); counting warm-up (150 ms)
    # or loading (60 ms) would give at least 80 ms per image
    assert 0.02 <= figures["ms_per_image"] / 1000 < 0.06
    assert figures["images_per_s"] == pytest.approx(1000 / figures["ms_per_image"])
    assert figures["timed_seconds"] == pytest.approx(7 * figures["ms_per_image"] / 1000)
    # progress lines every 4 images once past the warm-up: at 8 and 12
    assert [line.split("]")[0] for line in lines] == ["[ 8/12", "[12/12"]
    assert figures["memory_kind"] == "cpu_peak_rss" and figures["peak_memory_mb"] > 0


def test_bad_counts_are_clear_errors():
    with pytest.raises(ConfigError, match="warm-up"):
        time_inference(SleepyModel([0] * 5), slow_batches(0), num_images=5)
    with pytest.raises(DetzooError, match="only 6 images"):
        time_inference(SleepyModel([0] * 9), iter([{"img": None, "img_metas": []}] * 6), num_images=9)


def test_command_on_random_weights_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = main(["benchmark", "faster_rcnn_r18_fpn_quickstart", "--num-images", "7", "--log-interval", "1",
               "--source", "generated", "--fuse-conv-bn", "--json", str(out)])
    assert rc == 0
    record = json.loads(out.read_text())
    assert record["timed_images"] == 2 and record["fuse_conv_bn"] is True and record["checkpoint"] is None
    assert record["ms_per_image"] == pytest.approx(1000 / record["images_per_s"])
    printed = capsys.readouterr().out
    assert "20 BatchNorms folded" in printed  # ResNet-18: stem + 16 block norms + 3 downsamples
    assert "[6/7]" in printed and "[7/7]" in printed and "[5/7]" not in printed


def test_fast_runs_every_forward_in_the_fast_paths_autocast(tmp_path, capsys, monkeypatch):
    import detzoo.apis.fast_path as fast_path

    optimized, entered = [], []
    real_optimize, real_autocast = fast_path.optimize_for_inference, fast_path.inference_autocast

    def optimize(model, *args, **kwargs):
        optimized.append(model)
        return real_optimize(model, *args, **kwargs)

    def autocast(model):
        entered.append(fast_path.is_optimized(model))
        return real_autocast(model)

    monkeypatch.setattr(fast_path, "optimize_for_inference", optimize)
    monkeypatch.setattr(fast_path, "inference_autocast", autocast)
    out = tmp_path / "fast.json"
    rc = main(["benchmark", "faster_rcnn_r18_fpn_quickstart", "--num-images", "7", "--source", "generated",
               "--fast", "--json", str(out)])
    assert rc == 0
    assert len(optimized) == 1 and json.loads(out.read_text())["fast"] is True
    assert entered == [True] * 7  # 5 warm-up + 2 timed forwards, each on the optimised model
    assert "fast path" in capsys.readouterr().out


def test_fast_without_fast_path_module_is_a_clear_error(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "detzoo.apis.fast_path", None)  # the import fails
    rc = main(["benchmark", "faster_rcnn_r18_fpn_quickstart", "--num-images", "6", "--fast"])
    assert rc == 2
    assert "--fast needs detzoo.apis.fast_path" in capsys.readouterr().err
