"""analyze-logs: figures against a brute-force per-iteration reconstruction of logs written by
the real TrainLogger, curves against the logged values, and errors that name file and line."""
import json

import cv2
import numpy as np
import pytest

from detzoo.cli.main import main
from detzoo.engine.logging import TrainLogger
from detzoo.errors import DataError
from detzoo.tools.log_analysis import cal_train_time, load_log, plot_curve

CONFIG_TEXT = "model = dict()\ndata = dict(\n    samples_per_gpu=3,\n    workers_per_gpu=0)\n"


def line_time(epoch, inner):
    return round(0.2 + 0.01 * epoch + 0.0003 * inner + (0.5 if inner == 50 else 0.0), 6)


def write_log(folder, epochs=3, epoch_len=301, interval=50, with_ips=False, world=2):
    """Logs every ``interval`` iterations (the last partial interval of an epoch is not logged,
    as mmcv's ignore_last). Returns the json path and {global iteration: seconds}."""
    per_iter = {}
    with TrainLogger(folder, timestamp="20240101_000000", console=False) as log:
        log.dump_json({"env_info": f"Python 3, PyTorch 2, device cpu, world size {world}",
                       "config": CONFIG_TEXT, "seed": 0, "exp_name": "x"})
        for epoch in range(1, epochs + 1):
            for inner in range(interval, epoch_len + 1, interval):
                t = line_time(epoch, inner)
                values = {"data_time": 0.01, "loss_cls": 1.0 / (epoch * inner), "loss": 2.0, "time": t}
                if with_ips:
                    values["imgs_per_s"] = 3 * world / t
                log.log_train(epoch, inner, epoch_len, 0.01, 0.0, values)
                for it in range(inner - interval + 1, inner + 1):
                    per_iter[(epoch - 1) * epoch_len + it] = t
            log.log_val(epoch, 10, 0.01, {"bbox_mAP": 0.1 * epoch, "bbox_mAP_50": 0.2 * epoch})
    return str(folder / "20240101_000000.log.json"), per_iter


def test_window_and_epoch_figures_match_brute_force(tmp_path):
    path, per_iter = write_log(tmp_path)
    figures = cal_train_time(load_log(path))
    window = [per_iter[g] for g in range(101, 501) if g in per_iter]  # iteration 301 is not logged
    assert figures["window_iters"] == len(window) == 399
    assert figures["window_iter_time"] == pytest.approx(np.mean(window), rel=1e-6)
    assert figures["window_images_per_s"] == pytest.approx(6 / np.mean(window), rel=1e-6)  # 3 x 2 GPUs
    # per epoch: mean of the logged lines without each epoch's first one
    means = {e: np.mean([line_time(e, i) for i in range(100, 301, 50)]) for e in (1, 2, 3)}
    assert figures["slowest_epoch"][0] == 3 and figures["fastest_epoch"][0] == 1
    assert figures["slowest_epoch"][1] == pytest.approx(means[3])
    assert figures["epoch_std"] == pytest.approx(np.std(list(means.values())))
    outliers = cal_train_time(load_log(path), include_outliers=True)
    assert outliers["epochs"][2] == pytest.approx(np.mean([line_time(2, i) for i in range(50, 301, 50)]))
    shifted = cal_train_time(load_log(path), window=(330, 620))
    ref = [per_iter[g] for g in range(331, 621) if g in per_iter]
    assert shifted["window_iter_time"] == pytest.approx(np.mean(ref), rel=1e-6)


def test_imgs_per_s_entries_are_used_and_batch_size_option(tmp_path):
    path, per_iter = write_log(tmp_path, with_ips=True, world=1)
    window = [per_iter[g] for g in range(101, 501) if g in per_iter]
    figures = cal_train_time(load_log(path))
    assert figures["images_per_s_source"].startswith("imgs_per_s")
    assert figures["window_images_per_s"] == pytest.approx(3 / np.mean(window), rel=1e-4)
    forced = cal_train_time(load_log(path), batch_size=16)
    assert forced["window_images_per_s"] == pytest.approx(16 / np.mean(window), rel=1e-6)


def test_epoch_length_estimated_without_text_log(tmp_path):
    path, per_iter = write_log(tmp_path, epoch_len=300)
    (tmp_path / "20240101_000000.log").unlink()
    log = load_log(path)
    assert log.epoch_len == {1: 300, 2: 300, 3: 300}
    figures = cal_train_time(log, window=(250, 450))
    assert figures["window_iter_time"] == pytest.approx(np.mean([per_iter[g] for g in range(251, 451)]))


def test_plot_curve_series_and_picture(tmp_path):
    path, _ = write_log(tmp_path, epochs=2)
    out = tmp_path / "curve.png"
    series = plot_curve([load_log(path)], ["loss_cls", "bbox_mAP"], str(out))
    xs, ys = series["20240101_000000_loss_cls"]
    assert xs[:3] == [50, 100, 150] and xs[6] == 301 + 50  # global iterations across epochs
    assert ys[6] == pytest.approx(1.0 / (2 * 50))
    assert series["20240101_000000_bbox_mAP"] == ([1.0, 2.0], [0.1, 0.2])
    img = cv2.imread(str(out))
    assert img is not None and img.shape[:2] == (450, 1400)  # two 7x4.5 inch panels at 100 dpi
    assert (img < 128).any()  # something was drawn
    assert main(["analyze-logs", "plot-curve", path, "--keys", "loss", "--legend", "a", "b",
                 "--out", str(out)]) == 2  # one legend name per log and key


def test_errors_name_file_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.log.json"
    bad.write_text('{"env_info": "x"}\n{"mode": "train", "epoch": 1, "iter": 50, "time": 0.1}\n{"mode": "tr\n')
    with pytest.raises(DataError, match=r"bad\.log\.json, line 3: not valid JSON"):
        load_log(str(bad))
    bad.write_text('{"mode": "train", "epoch": 0, "iter": 50}\n')
    with pytest.raises(DataError, match="line 1: 'epoch' must be a positive integer"):
        load_log(str(bad))
    empty = tmp_path / "empty.log.json"
    empty.write_text("\n")
    with pytest.raises(DataError, match="empty"):
        load_log(str(empty))
    path, _ = write_log(tmp_path, epochs=1, epoch_len=100)
    with pytest.raises(DataError, match="no logged iteration inside the window 100-500.*1-100"):
        cal_train_time(load_log(path))
    assert main(["analyze-logs", "cal-train-time", str(tmp_path / "missing.log.json")]) == 2
    assert "missing.log.json: no such file" in capsys.readouterr().err
    with pytest.raises(DataError, match="no key 'bbox_mAPP'.*bbox_mAP"):
        plot_curve([load_log(path)], ["bbox_mAPP"], str(tmp_path / "c.png"))


def test_cal_train_time_command_prints_figures(tmp_path, capsys):
    path, per_iter = write_log(tmp_path)
    assert main(["analyze-logs", "cal-train-time", path, "--window", "0", "200"]) == 0
    out = capsys.readouterr().out
    expected = np.mean([per_iter[g] for g in range(1, 201)])
    assert f"{expected:.4f} s/iter" in out and f"{6 / expected:.2f} images/s" in out
