"""`detzoo convert` end to end, and the MMDetection checkpoint normalisation."""
import os
from collections import OrderedDict

import numpy as np
import pytest
import torch

from detzoo.cli.main import main
from detzoo.config import load_config
from detzoo.engine.checkpoint import load_checkpoint, load_model_weights
from detzoo.errors import CheckpointError
from detzoo.models.builder import build_detector
from detzoo.zoo.configs import configs_root
from detzoo.zoo.converters import convert_file
from detzoo.zoo.converters.mmdet import convert as convert_mmdet

from paddle_layout import layout, random_params, write_tar

QUICK = "quickstart/faster_rcnn_r18_fpn_quickstart.py"


def small_model():
    torch.manual_seed(0)
    return build_detector(load_config(str(configs_root() / QUICK))["model"])


def test_mmdet_2x_file_with_module_prefix(tmp_path, capsys):
    model = small_model()
    state = OrderedDict(("module." + k, v.clone()) for k, v in model.state_dict().items())
    src = tmp_path / "epoch_12.pth"
    torch.save({"meta": {"CLASSES": ["a", "b"], "mmdet_version": "2.25.0", "epoch": 12,
                         "config": "model = dict()"},
                "state_dict": state, "optimizer": {"state": {}, "param_groups": []}}, src)
    dst = tmp_path / "out.pth"
    assert main(["convert", str(src), str(dst), "--from", "mmdet"]) == 0
    assert f"wrote {dst}" in capsys.readouterr().out
    written = torch.load(dst, weights_only=True)
    assert set(written) == {"meta", "state_dict"}  # the optimizer is dropped
    assert written["meta"]["CLASSES"] == ("a", "b") and written["meta"]["epoch"] == 12
    assert list(written["state_dict"]) == list(model.state_dict())
    fresh = small_model()
    for p in fresh.parameters():
        torch.nn.init.zeros_(p)
    load_model_weights(fresh, str(dst), strict=True)
    for key, value in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_mmdet_3x_meta_and_rpn_keys():
    weights = {"rpn_head.rpn_conv.weight": torch.ones(1), "backbone.conv1.weight": torch.zeros(1)}
    out = convert_mmdet({"meta": {"dataset_meta": {"classes": ("cat", "dog")}, "mmengine_version": "0.7"},
                         "state_dict": weights, "message_hub": {}}, arch="rpn")
    assert out["meta"]["CLASSES"] == ("cat", "dog")
    assert list(out["state_dict"]) == ["bbox_head.rpn_conv.weight", "backbone.conv1.weight"]
    with pytest.raises(CheckpointError, match="holds no model weights"):
        convert_mmdet({"epoch": 3})
    with pytest.raises(CheckpointError, match="'backbone.x' is a str"):
        convert_mmdet({"state_dict": {"backbone.x": "text"}})


def test_mmdet_pickled_objects_need_unsafe_load(tmp_path, capsys):
    src = tmp_path / "legacy.pth"
    torch.save({"state_dict": {"a": torch.ones(2)}, "meta": {"when": np.float64(1.0).__class__}}, src)
    assert main(["convert", str(src), str(tmp_path / "o.pth"), "--from", "mmdet"]) == 2
    assert "--unsafe-load" in capsys.readouterr().err
    assert not (tmp_path / "o.pth").exists()
    assert main(["convert", str(src), str(tmp_path / "o.pth"), "--from", "mmdet", "--unsafe-load"]) == 0


def test_paddle_tar_end_to_end(tmp_path, capsys):
    params = random_params(layout("retinanet"), seed=7)
    src = tmp_path / "retinanet_r50_fpn_1x.tar"
    write_tar(src, params, folder="retinanet_r50_fpn_1x")
    dst = tmp_path / "retinanet_r50_fpn_1x.pth"
    assert main(["convert", str(src), str(dst), "--from", "paddle"]) == 0
    out = capsys.readouterr().out
    # the zoo row of this file names its config
    assert "retinanet" in out and os.path.join("retinanet", "retinanet_r50_fpn_1x.py") in out
    checkpoint = load_checkpoint(dst)
    assert checkpoint["meta"]["paddle_arch"] == "retinanet"
    model = build_detector(load_config(str(configs_root() / "retinanet/retinanet_r50_fpn_1x.py"))["model"])
    load_model_weights(model, checkpoint, strict=True)
    assert torch.equal(model.state_dict()["bbox_head.retina_reg.weight"],
                       torch.from_numpy(params["retnet_bbox_pred_fpn3_w"]))


def test_cli_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"\0" * 10)
    assert main(["convert", str(bad), str(tmp_path / "o.pth"), "--from", "paddle"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("detzoo convert: error:") and "bad.tar: not a readable tar" in err
    assert len(err.strip().splitlines()) == 1
    assert main(["convert", str(tmp_path / "none.pth"), str(tmp_path / "o.pth"), "--from", "mmdet"]) == 2
    assert "none.pth" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="unknown checkpoint source 'caffe'"):
        convert_file(bad, "caffe")
