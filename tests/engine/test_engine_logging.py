import json
from collections import OrderedDict

import pytest

from detzoo.engine.logging import (LogBuffer, TrainLogger, format_eta, format_train_line,
                                   format_val_line, peak_memory_mb, progress_bar)


def test_eta_text():
    assert format_eta(87151) == "1 day, 0:12:31"  # 86400 + 12 * 60 + 31
    assert format_eta(59.9) == "0:00:59"


def test_train_line_in_mmdetection_style():
    values = OrderedDict(memory=3512, data_time=0.0104, loss_rpn_cls=0.1, acc=97.25, loss=0.8, time=0.5123)
    line = format_train_line(1, 50, 7330, 0.02, 87151, values)
    assert line == ("Epoch [1][50/7330]\tlr: 2.000e-02, eta: 1 day, 0:12:31, time: 0.512, "
                    "data_time: 0.010, memory: 3512, loss_rpn_cls: 0.1000, acc: 97.2500, loss: 0.8000")
    assert format_val_line(12, 5000, {"bbox_mAP": 0.374, "bbox_mAP_copypaste": "0.374 0.581"}) == \
        "Epoch(val) [12][5000]\tbbox_mAP: 0.3740, bbox_mAP_copypaste: 0.374 0.581"


def test_log_buffer_averages_between_lines():
    buffer = LogBuffer()
    buffer.update({"loss": 1.0, "time": 0.2})
    buffer.update({"loss": 3.0, "time": 0.4})
    assert buffer.average() == pytest.approx({"loss": 2.0, "time": 0.3})
    buffer.clear()
    assert len(buffer) == 0


def test_text_and_json_files(tmp_path):
    with TrainLogger(tmp_path, timestamp="20240101_000000", console=False) as logger:
        logger.dump_json({"env_info": "x", "config": "a = 1", "seed": 0})
        logger.log_train(2, 10, 20, 1.25e-7, 30.0, OrderedDict(memory=5, data_time=0.01, loss=float("nan"),
                                                                  time=0.1))
        logger.log_val(2, 8, 1.25e-7, {"bbox_mAP": 0.5})
    lines = [json.loads(line) for line in (tmp_path / "20240101_000000.log.json").read_text().splitlines()]
    assert lines[0]["config"] == "a = 1"
    assert lines[1] == {"mode": "train", "epoch": 2, "iter": 10, "lr": 1.25e-7, "memory": 5,
                        "data_time": 0.01, "loss": "nan", "time": 0.1}  # tiny lr not rounded to 0
    assert lines[2] == {"mode": "val", "epoch": 2, "iter": 8, "lr": 1.25e-7, "bbox_mAP": 0.5}
    text = (tmp_path / "20240101_000000.log").read_text()
    assert "Epoch [2][10/20]\tlr: 1.250e-07, eta: 0:00:30" in text and "Epoch(val) [2][8]" in text


def test_disabled_logger_writes_nothing(tmp_path):
    logger = TrainLogger(tmp_path / "wd", enabled=False)
    logger.info("hello")
    logger.dump_json({"a": 1})
    logger.close()
    assert not (tmp_path / "wd").exists()


def test_peak_memory_and_progress_bar():
    assert peak_memory_mb("cpu") > 10  # a Python process with torch loaded holds > 10 MB
    assert list(progress_bar(range(3), total=3, enabled=False)) == [0, 1, 2]
