"""flops: per-module counts against FLOPs worked out by hand (2 per multiply-add)."""
import json

import pytest
import torch
from torch import nn

from detzoo.cli.main import main
from detzoo.config import load_config
from detzoo.errors import ConfigError
from detzoo.models.builder import build_detector
from detzoo.tools.flops import count_flops, format_table, parse_shape


class TinyDetector(nn.Module):
    """A conv trunk and a linear head driven from ``predict`` (never ``forward``), like ours."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
                                      nn.Conv2d(8, 4, 1, groups=2, bias=False))
        self.head = nn.Linear(4, 5)

    def predict(self, img, img_metas, rescale=False):
        feat = self.backbone(img)                 # [1, 4, H/2, W/2]
        pooled = feat.mean(dim=(2, 3))            # not counted: a reduction, no multiply-add
        return self.head(pooled.repeat(10, 1))    # 10 rows through the linear layer


def test_tiny_model_counts_match_hand_computation():
    rows, total, (pad_h, pad_w) = count_flops(TinyDetector(), width=45, height=30)
    assert (pad_h, pad_w) == (32, 64)  # padded to multiples of 32, as images enter the model
    out_h, out_w = 16, 32
    conv0 = 2 * (8 * out_h * out_w) * (3 * 3 * 3)      # out elements x (C_in/groups x kh x kw)
    conv2 = 2 * (4 * out_h * out_w) * (8 // 2 * 1 * 1)
    linear = 2 * 10 * 4 * 5
    got = {name: (params, flops) for name, params, flops in rows}
    assert got["backbone.0"] == (8 * 3 * 9 + 8, conv0)
    assert got["backbone.1"] == (0, 0)
    assert got["backbone.2"] == (4 * 4, conv2)
    assert got["backbone"] == (8 * 3 * 9 + 8 + 16, conv0 + conv2)
    assert got["head"] == (4 * 5 + 5, linear)
    assert got[""][1] == total == conv0 + conv2 + linear
    table = format_table(rows, total, max_depth=1)
    assert "backbone" in table and "head" in table and "  0 " not in table  # depth 2 hidden


def test_real_backbone_stem_count():
    model = build_detector(load_config("faster_rcnn_r18_fpn_quickstart")["model"])
    rows, total, _ = count_flops(model, width=320, height=256)
    got = {name: (params, flops) for name, params, flops in rows}
    # ResNet stem: 7x7 stride-2 conv, 3 -> C channels, no bias, on 256x320 -> 128x160
    c = model.backbone.conv1.out_channels
    assert got["backbone.conv1"] == (c * 3 * 49, 2 * c * 128 * 160 * 3 * 49)
    assert got["backbone"][1] + got["neck"][1] + got["rpn_head"][1] <= total
    assert got[""][0] == sum(p.numel() for p in model.parameters())


def test_shape_parsing():
    assert parse_shape([1333, 800]) == (1333, 800)
    assert parse_shape([640]) == (640, 640)
    for bad in ([1, 2, 3], [0, 5], []):
        with pytest.raises(ConfigError, match="--shape"):
            parse_shape(bad)


def test_command_json(tmp_path):
    out = tmp_path / "flops.json"
    assert main(["flops", "faster_rcnn_r18_fpn_quickstart", "--shape", "256", "--depth", "1",
                 "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert (record["width"], record["height"]) == (256, 256)
    conv1 = next(m for m in record["modules"] if m["name"] == "backbone.conv1")
    c = conv1["params"] // (3 * 49)
    assert conv1["flops"] == 2 * c * 128 * 128 * 3 * 49
    assert record["macs"] * 2 == record["flops"]
