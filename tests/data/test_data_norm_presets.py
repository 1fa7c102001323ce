"""Normalisation presets against the values of the model-zoo spec and MMDetection configs."""
import pytest

from detzoo.data import NORM_PRESETS, get_norm_cfg
from detzoo.errors import ConfigError

# typed from /work/shared/spec/model-zoo.md (style table) and the mmdet configs cited there
EXPECTED = {
    "pytorch": ([123.675, 116.28, 103.53], [58.395, 57.12, 57.375], True),
    "torchvision": ([123.675, 116.28, 103.53], [58.395, 57.12, 57.375], True),
    "pycls": ([103.530, 116.280, 123.675], [57.375, 57.12, 58.395], False),
    "caffe": ([103.530, 116.280, 123.675], [1, 1, 1], False),
    "msra": ([103.530, 116.280, 123.675], [1, 1, 1], False),
    "caffe2": ([103.530, 116.280, 123.675], [57.375, 57.120, 58.395], False),
    "ssd": ([123.675, 116.28, 103.53], [1, 1, 1], True),
    "yolo": ([0, 0, 0], [255, 255, 255], True),
    "caffe_detectron1": ([102.9801, 115.9465, 122.7717], [1, 1, 1], False),
    # PaddleDetection: RGB, mean [0.485, 0.456, 0.406] and std [0.229, 0.224, 0.225] of x/255
    "paddle": ([0.485 * 255, 0.456 * 255, 0.406 * 255], [0.229 * 255, 0.224 * 255,
                                                         0.225 * 255], True),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_preset_values(name):
    mean, std, to_rgb = EXPECTED[name]
    cfg = NORM_PRESETS[name]
    assert cfg["mean"] == pytest.approx(mean, abs=1e-9)
    assert cfg["std"] == pytest.approx(std, abs=1e-9)
    assert cfg["to_rgb"] is to_rgb


def test_get_norm_cfg_returns_an_independent_copy():
    cfg = get_norm_cfg("pytorch")
    cfg["mean"][0] = 0
    assert NORM_PRESETS["pytorch"]["mean"][0] == 123.675
    with pytest.raises(ConfigError, match="nope"):
        get_norm_cfg("nope")
