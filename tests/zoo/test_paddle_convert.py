"""PaddleDetection archives -> detzoo weights: readers, name mapping, numerics.

Checkpoints are synthesised here in Paddle's layout (tests/zoo/paddle_layout.py lists Paddle's
naming rules independently of the converter), converted, loaded strictly into the Paddle configs
under configs/, and checked value by value and against hand computations from the raw arrays.
"""
import os
import pickle
import struct

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from detzoo.config import load_config
from detzoo.engine.checkpoint import load_model_weights
from detzoo.errors import CheckpointError
from detzoo.models.builder import build_detector
from detzoo.zoo.converters import convert_file
from detzoo.zoo.converters.paddle import parse_lod_tensor, read_paddle_params
from detzoo.zoo.configs import configs_root

from paddle_layout import layout, lod_tensor_bytes, random_params, write_pdparams, write_tar


def build(config):
    torch.manual_seed(0)
    return build_detector(load_config(str(configs_root() / config))["model"]).eval()


@pytest.fixture(scope="module")
def faster_vd(tmp_path_factory):
    """R50-vd FPN Faster R-CNN arrays, as .tar (LoDTensor files) and .pdparams."""
    folder = tmp_path_factory.mktemp("paddle")
    params = random_params(layout("faster_rcnn_fpn", depth=50, vd=True), seed=1)
    tar = folder / "faster_rcnn_r50_vd_fpn_2x.tar"
    # a real save_persistables folder also holds optimizer state: it must be skipped
    write_tar(tar, params, folder="faster_rcnn_r50_vd_fpn_2x",
              extra_members={"faster_rcnn_r50_vd_fpn_2x/fc6_w_velocity_0": lod_tensor_bytes(
                  np.zeros((3,), np.float32))})
    pdparams = folder / "faster_rcnn_r50_vd_fpn_2x.pdparams"
    write_pdparams(pdparams, params)
    return params, tar, pdparams


# --- readers --------------------------------------------------------------------------------
def test_lod_tensor_round_trip_with_lod_levels_and_dtypes():
    values = np.arange(24, dtype=np.float32).reshape(2, 3, 4) - 5.5
    got = parse_lod_tensor(lod_tensor_bytes(values, lod=[[0, 1, 2]]), "x")
    assert got.dtype == np.float32 and got.shape == (2, 3, 4)
    np.testing.assert_array_equal(got, values)
    ints = np.array([[-3, 2 ** 40]], dtype=np.int64)
    np.testing.assert_array_equal(parse_lod_tensor(lod_tensor_bytes(ints), "x"), ints)
    # hand-built bytes: float64 scalar-free vector [1.5, -2], dims=[2], no LoD
    desc = b"\x08\x06" + b"\x10\x02"
    raw = (struct.pack("<IQ", 0, 0) + struct.pack("<Ii", 0, len(desc)) + desc
           + struct.pack("<2d", 1.5, -2.0))
    assert parse_lod_tensor(raw, "x").tolist() == [1.5, -2.0]


def test_lod_tensor_errors_name_the_member(tmp_path):
    good = lod_tensor_bytes(np.ones((4, 5), np.float32))
    with pytest.raises(CheckpointError, match=r"model/fc6_w.*truncated.*tensor data"):
        tar = tmp_path / "cut.tar"
        write_tar(tar, {}, extra_members={"model/fc6_w": good[:-3]})
        read_paddle_params(tar)
    with pytest.raises(CheckpointError, match="unexpected bytes"):
        parse_lod_tensor(good + b"\0", "m")
    with pytest.raises(CheckpointError, match="version 7"):
        parse_lod_tensor(struct.pack("<I", 7) + good[4:], "m")
    bad_type = good.replace(b"\x08\x05", b"\x08\x63", 1)
    with pytest.raises(CheckpointError, match="data type 99"):
        parse_lod_tensor(bad_type, "m")


def test_tar_and_pdparams_read_the_same_arrays(faster_vd):
    params, tar, pdparams = faster_vd
    from_tar = read_paddle_params(tar)
    from_pickle = read_paddle_params(pdparams)
    assert list(from_tar) == list(params)  # velocity member skipped, order kept
    for name in ("conv1_1_weights", "fc6_w", "bn5c_branch2c_offset"):
        np.testing.assert_array_equal(from_tar[name], params[name])
        np.testing.assert_array_equal(from_pickle[name], params[name])


def test_paddle2_pdparams_tuple_form(tmp_path):
    params = {"fc6_w": np.arange(6, dtype=np.float32).reshape(2, 3)}
    path = tmp_path / "m.pdparams"
    write_pdparams(path, params, paddle2=True)
    got = read_paddle_params(path)
    assert list(got) == ["fc6_w"]
    np.testing.assert_array_equal(got["fc6_w"], params["fc6_w"])


class _Evil:
    def __reduce__(self):
        return (os.getcwd, ())


def test_pickle_with_code_is_refused_unless_unsafe(tmp_path):
    path = tmp_path / "evil.pdparams"
    with open(path, "wb") as f:
        pickle.dump({"fc6_w": np.zeros(2, np.float32), "x": _Evil()}, f, protocol=2)
    with pytest.raises(CheckpointError, match=r"evil.pdparams.*posix.getcwd.*--unsafe-load"):
        read_paddle_params(path)
    # allowed to unpickle, the non-array entry is then a clear error (getcwd ran: a str)
    with pytest.raises(CheckpointError, match="entry 'x' is a str"):
        read_paddle_params(path, allow_pickle=True)


def test_not_an_archive(tmp_path):
    path = tmp_path / "junk.pdparams"
    path.write_bytes(b"not a pickle at all")
    with pytest.raises(CheckpointError, match="junk.pdparams: not a readable .pdparams"):
        read_paddle_params(path)


# --- mapping and numerics -------------------------------------------------------------------
def test_faster_rcnn_vd_converts_and_loads_strictly(faster_vd):
    params, tar, _ = faster_vd
    converted = convert_file(tar, "paddle")
    assert converted["meta"]["paddle_arch"] == "faster_rcnn_fpn"
    assert converted["meta"]["backbone"] == "ResNet-50-vd"
    sd = converted["state_dict"]
    model = build("faster_rcnn/faster_rcnn_r50_vd_fpn_2x.py")
    load_model_weights(model, converted, strict=True)

    # conv + affine_channel: stem conv 1_2, a vd shortcut behind its avg-pool
    assert torch.equal(sd["backbone.stem.3.weight"], torch.from_numpy(params["conv1_2_weights"]))
    assert torch.equal(sd["backbone.layer2.0.downsample.1.weight"],
                       torch.from_numpy(params["res3a_branch1_weights"]))
    assert torch.equal(sd["backbone.layer2.0.downsample.2.weight"],
                       torch.from_numpy(params["bn3a_branch1_scale"]))
    assert torch.equal(sd["backbone.layer1.0.downsample.0.weight"],  # stage 2: no pool
                       torch.from_numpy(params["res2a_branch1_weights"]))
    # FPN level order: res2 is the finest lateral, res5's inner conv has no _lateral suffix
    assert torch.equal(sd["neck.lateral_convs.0.conv.weight"],
                       torch.from_numpy(params["fpn_inner_res2_sum_lateral_w"]))
    assert torch.equal(sd["neck.lateral_convs.3.conv.bias"], torch.from_numpy(params["fpn_inner_res5_sum_b"]))
    assert torch.equal(sd["neck.fpn_convs.1.conv.weight"], torch.from_numpy(params["fpn_res3_sum_w"]))
    # FC transposed; classes: Paddle row k+1 -> ours k, background (Paddle 0) -> ours 80
    fc6 = params["fc6_w"]
    assert sd["roi_head.bbox_head.shared_fcs.0.weight"][17, 12000].item() == fc6[12000, 17]
    cls_w, cls_b = params["cls_score_w"], params["cls_score_b"]
    ours = sd["roi_head.bbox_head.fc_cls.weight"]
    assert ours.shape == (81, 1024)
    assert ours[0, 5].item() == cls_w[5, 1] and ours[79, 9].item() == cls_w[9, 80]
    assert ours[80, 3].item() == cls_w[3, 0]
    assert sd["roi_head.bbox_head.fc_cls.bias"][80].item() == cls_b[0]
    reg = sd["roi_head.bbox_head.fc_reg.weight"]
    assert reg.shape == (320, 1024)
    assert reg[4 * 7 + 2, 11].item() == params["bbox_pred_w"][11, 4 * 8 + 2]

    # affine_channel is exactly x * scale + offset: our first stem conv + norm vs the raw arrays
    x = torch.randn(1, 3, 32, 32)
    expected = F.conv2d(x, torch.from_numpy(params["conv1_1_weights"]), stride=2, padding=1)
    expected = (expected * torch.from_numpy(params["bnv1_1_scale"]).view(1, -1, 1, 1)
                + torch.from_numpy(params["bnv1_1_offset"]).view(1, -1, 1, 1))
    with torch.no_grad():
        got = model.backbone.stem[1](model.backbone.stem[0](x))
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)

    # one RoI through the box head == a numpy hand computation on Paddle's arrays
    feat = np.random.default_rng(3).standard_normal((1, 256, 7, 7)).astype(np.float32)
    h = np.maximum(feat.reshape(1, -1).astype(np.float64) @ fc6 + params["fc6_b"], 0)
    h = np.maximum(h @ params["fc7_w"] + params["fc7_b"], 0)
    logits = h @ cls_w + cls_b  # [1, 81], background first
    deltas = h @ params["bbox_pred_w"] + params["bbox_pred_b"]  # [1, 4 * 81]
    head = model.roi_head.bbox_head
    with torch.no_grad():
        flat = torch.from_numpy(feat).flatten(1)
        for fc in head.shared_fcs:
            flat = torch.relu(fc(flat))
        our_logits, our_deltas = head.fc_cls(flat).double().numpy(), head.fc_reg(flat).double().numpy()
    np.testing.assert_allclose(our_logits[0, :80], logits[0, 1:], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(our_logits[0, 80], logits[0, 0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(our_deltas[0], deltas[0, 4:], rtol=1e-4, atol=1e-4)
    # softmax probabilities of the same class agree
    ours_p = np.exp(our_logits[0] - our_logits[0].max())
    theirs_p = np.exp(logits[0] - logits[0].max())
    np.testing.assert_allclose(ours_p[:80] / ours_p.sum(), theirs_p[1:] / theirs_p.sum(), rtol=1e-4, atol=1e-7)


def test_pdparams_converts_to_the_same_weights(faster_vd):
    _, tar, pdparams = faster_vd
    a = convert_file(tar, "paddle")["state_dict"]
    b = convert_file(pdparams, "paddle", arch="faster_rcnn_fpn")["state_dict"]
    assert list(a) == list(b)
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("arch,config,kwargs", [
    ("mask_rcnn_fpn", "mask_rcnn/mask_rcnn_r50_fpn_1x.py", {}),
    ("cascade_rcnn_fpn", "cascade_rcnn/cascade_rcnn_r50_fpn_1x.py", {}),
    ("retinanet", "retinanet/retinanet_r50_fpn_1x.py", {}),
])
def test_other_architectures_load_strictly(tmp_path, arch, config, kwargs):
    params = random_params(layout(arch, **kwargs), seed=2)
    path = tmp_path / f"{arch}.pdparams"
    write_pdparams(path, params)
    converted = convert_file(path, "paddle")  # architecture guessed from the names
    assert converted["meta"]["paddle_arch"] == arch
    sd = converted["state_dict"]
    load_model_weights(build(config), converted, strict=True)
    if arch == "mask_rcnn_fpn":
        logits = params["mask_fcn_logits_w"]
        assert torch.equal(sd["roi_head.mask_head.conv_logits.weight"], torch.from_numpy(logits[1:]))
        assert torch.equal(sd["roi_head.mask_head.upsample.weight"], torch.from_numpy(params["conv5_mask_w"]))
        assert torch.equal(sd["roi_head.mask_head.convs.3.conv.weight"],
                           torch.from_numpy(params["mask_inter_feat_4_w"]))
    if arch == "cascade_rcnn_fpn":
        # stage 3's class-agnostic regressor keeps the foreground deltas (columns 4..7)
        assert torch.equal(sd["roi_head.bbox_head.2.fc_reg.weight"],
                           torch.from_numpy(np.ascontiguousarray(params["bbox_pred_3_w"][:, 4:8].T)))
        assert sd["roi_head.bbox_head.1.fc_cls.weight"][80, 0].item() == params["cls_score_2_w"][0, 0]
    if arch == "retinanet":
        assert torch.equal(sd["neck.lateral_convs.0.conv.weight"],
                           torch.from_numpy(params["fpn_inner_res3_sum_lateral_w"]))
        assert torch.equal(sd["neck.fpn_convs.3.conv.weight"], torch.from_numpy(params["fpn_6_w"]))
        assert torch.equal(sd["bbox_head.retina_cls.bias"], torch.from_numpy(params["retnet_cls_pred_fpn3_b"]))


@pytest.mark.slow  # ~25 s on 2 cores: builds a ResNeXt-101 Faster R-CNN
def test_resnet101_and_resnext_block_names(tmp_path):
    params = random_params(layout("faster_rcnn_fpn", depth=101, vd=True, groups=64), seed=4)
    path = tmp_path / "x101.pdparams"
    write_pdparams(path, params)
    converted = convert_file(path, "paddle")
    assert converted["meta"]["backbone"] == "ResNeXt-101 64x4d-vd"
    sd = converted["state_dict"]
    assert torch.equal(sd["backbone.layer3.22.conv2.weight"], torch.from_numpy(params["res4b22_branch2b_weights"]))
    load_model_weights(build("faster_rcnn/faster_rcnn_x101_vd_64x4d_fpn_1x.py"), converted, strict=True)


def test_wrong_or_incomplete_archives_are_clear_errors(tmp_path):
    from detzoo.zoo.converters.paddle import ARCHS

    zeros = lambda shapes: {n: np.zeros(s, np.float32) for n, s in shapes.items()}  # noqa: E731
    params = zeros(layout("faster_rcnn_fpn"))
    del params["fc7_b"]
    with pytest.raises(CheckpointError, match=r"'fc7_b' is missing"):
        ARCHS["faster_rcnn_fpn"](params)
    with pytest.raises(CheckpointError, match=r"have no place in a 'faster_rcnn_fpn'.*mask_"):
        ARCHS["faster_rcnn_fpn"](zeros(layout("mask_rcnn_fpn")))
    path = tmp_path / "small.pdparams"
    write_pdparams(path, {"fc6_w": np.zeros((2, 2), np.float32)})
    with pytest.raises(CheckpointError, match=r"small.pdparams: cannot tell the architecture"):
        convert_file(path, "paddle")
    with pytest.raises(CheckpointError, match="--arch 'nope'"):
        convert_file(path, "paddle", arch="nope")
    with pytest.raises(CheckpointError, match=r"small.pdparams.*conv1_weights.*missing"):
        convert_file(path, "paddle", arch="faster_rcnn_fpn")
    c4 = {n: np.zeros(1) for n in ("conv1_weights", "res2a_branch2a_weights", "res5a_branch2a_weights", "cls_score_w")}
    write_pdparams(path, c4)
    # recognised as a C4 R-CNN (tests/zoo/test_paddle_c4.py), then refused for what it lacks
    with pytest.raises(CheckpointError, match=r"small.pdparams.*'bn_conv1_scale' is missing"):
        convert_file(path, "paddle")
