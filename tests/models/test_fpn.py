"""FPN neck and ConvModule/norm layers: MMDetection key layouts and hand-written arithmetic.

The reference pyramid is computed here from the module's weights with einsum (1x1 laterals),
F.conv2d (3x3 outputs), index-gather nearest resizing (src = floor(dst * in / out)) and strided
slicing for the kernel-1 stride-2 max pool.
"""
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from shared_paths import layout_dir, layout_fingerprint
from detzoo.errors import ConfigError
from detzoo.models.backbones import ResNet
from detzoo.models.layers import ConvModule, FrozenBatchNorm2d, build_norm_layer
from detzoo.models.necks import FPN

# ---------------------------------------------------------------- layouts against MMDetection


_layout_dir = layout_dir
_fingerprint = layout_fingerprint


R50 = dict(depth=50, frozen_stages=1)
C4 = [256, 512, 1024, 2048]
# (layout file, backbone kwargs, neck kwargs, number of backbone.*/neck.* entries, fingerprint)
# taken from the mmdet 3.3.0 model configs and state dicts recorded in the layout files.
LAYOUTS = [
    ("faster-rcnn_r50_fpn_1x_coco.json", R50, dict(in_channels=C4, out_channels=256, num_outs=5),
     334, "8f848235caaa3a182f76086e10f3aa7141534e4eb5f260b301cb24cf02158192"),
    ("retinanet_r50_fpn_1x_coco.json", R50,
     dict(in_channels=C4, out_channels=256, start_level=1, add_extra_convs="on_input",
          num_outs=5),
     334, "4d09ac5684e376de1599f6a7f6040844f10d7e0a1d087e8300d61a469d632746"),
    ("fcos_r50-caffe_fpn_gn-head_1x_coco.json",
     dict(R50, style="caffe", norm_cfg=dict(type="BN", requires_grad=False)),
     dict(in_channels=C4, out_channels=256, start_level=1, add_extra_convs="on_output",
          num_outs=5, relu_before_extra_convs=True),
     334, "f43fe59cb27cf0f6eb22b5b8f482a3e165150e38af624f3b6c9b17c23e6417be"),
    ("atss_r50_fpn_1x_coco.json", R50,
     dict(in_channels=C4, out_channels=256, start_level=1, add_extra_convs="on_output",
          num_outs=5),
     334, "f43fe59cb27cf0f6eb22b5b8f482a3e165150e38af624f3b6c9b17c23e6417be"),
]


@pytest.mark.parametrize("name,backbone_kw,neck_kw,count,digest", LAYOUTS,
                         ids=[x[0].split("_")[0] for x in LAYOUTS])
def test_backbone_and_neck_keys_match_mmdet(name, backbone_kw, neck_kw, count, digest):
    ours = {f"backbone.{k}": tuple(v.shape) for k, v in ResNet(**backbone_kw).state_dict().items()}
    ours.update({f"neck.{k}": tuple(v.shape) for k, v in FPN(**neck_kw).state_dict().items()})
    layout_dir = _layout_dir()
    if layout_dir is not None:
        record = json.loads((layout_dir / name).read_text())
        cfg = record["model_cfg"]
        for key, value in neck_kw.items():  # our test cases really are those configs
            assert cfg["neck"][key] == value, key
        assert cfg["backbone"]["style"] == backbone_kw.get("style", "pytorch")
        ref = {k: tuple(s) for k, s in record["layout"] if k.startswith(("backbone.", "neck."))}
        assert sorted(set(ours) - set(ref)) == [] and sorted(set(ref) - set(ours)) == []
        assert {k: s for k, s in ours.items() if ref[k] != s} == {}
    assert (len(ours), _fingerprint(ours.items())) == (count, digest)


# ---------------------------------------------------------------- reference arithmetic

IN_CH = [8, 16, 32, 64]
# stride-2 chain from a 25x37 C2, so resizing is by non-integer factors (13 -> 25, 19 -> 37)
SIZES = [(25, 37), (13, 19), (7, 10), (4, 5)]


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(2, c, h, w, generator=g) for c, (h, w) in zip(IN_CH, SIZES))


def _randomise_biases(fpn, seed=1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in fpn.modules():
            if isinstance(m, nn.Conv2d):
                m.bias.copy_(torch.randn(m.bias.shape, generator=g))


def _nearest(x, size):
    h_in, w_in = x.shape[2:]
    rows = torch.tensor([i * h_in // size[0] for i in range(size[0])])
    cols = torch.tensor([j * w_in // size[1] for j in range(size[1])])
    return x[:, :, rows][:, :, :, cols]


def _conv1x1(module, x):
    w, b = module.conv.weight[:, :, 0, 0], module.conv.bias
    return torch.einsum("oc,nchw->nohw", w, x) + b[None, :, None, None]


def _conv3x3(module, x, stride=1):
    return F.conv2d(x, module.conv.weight, module.conv.bias, stride=stride, padding=1)


def _reference(fpn, inputs, start, end, extra=None, relu_extra=False, num_outs=None):
    laterals = [_conv1x1(fpn.lateral_convs[i - start], inputs[i]) for i in range(start, end)]
    for i in range(len(laterals) - 1, 0, -1):
        laterals[i - 1] = laterals[i - 1] + _nearest(laterals[i], laterals[i - 1].shape[2:])
    outs = [_conv3x3(fpn.fpn_convs[i], lat) for i, lat in enumerate(laterals)]
    n = len(outs)
    while len(outs) < num_outs:
        if extra is None:
            outs.append(outs[-1][:, :, ::2, ::2])
        elif len(outs) == n:
            source = {"on_input": inputs[end - 1], "on_lateral": laterals[-1],
                      "on_output": outs[-1]}[extra]
            outs.append(_conv3x3(fpn.fpn_convs[n], source, stride=2))
        else:
            prev = outs[-1].clamp(min=0) if relu_extra else outs[-1]
            outs.append(_conv3x3(fpn.fpn_convs[len(outs)], prev, stride=2))
    return outs


def _check(outs, refs):
    assert len(outs) == len(refs)
    for out, ref in zip(outs, refs):
        assert out.shape == ref.shape
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_top_down_and_maxpool_levels_match_reference():
    fpn = FPN(IN_CH, 16, num_outs=6)
    _randomise_biases(fpn)
    inputs = _inputs()
    with torch.no_grad():
        outs = fpn(inputs)
        refs = _reference(fpn, inputs, 0, 4, num_outs=6)
    _check(outs, refs)
    # P6/P7 by kernel-1 stride-2 max pool: 4x5 -> 2x3 -> 1x2
    assert [tuple(o.shape[2:]) for o in outs] == SIZES + [(2, 3), (1, 2)]


@pytest.mark.parametrize("source", ["on_input", "on_lateral", "on_output"])
@pytest.mark.parametrize("relu_extra", [False, True])
def test_extra_convs_match_reference(source, relu_extra):
    fpn = FPN(IN_CH, 16, num_outs=5, start_level=1, add_extra_convs=source,
              relu_before_extra_convs=relu_extra)
    _randomise_biases(fpn)
    assert len(fpn.lateral_convs) == 3 and len(fpn.fpn_convs) == 5
    in_ch = IN_CH[-1] if source == "on_input" else 16
    assert fpn.fpn_convs[3].conv.weight.shape == (16, in_ch, 3, 3)
    assert fpn.fpn_convs[3].conv.stride == fpn.fpn_convs[4].conv.stride == (2, 2)
    inputs = _inputs()
    with torch.no_grad():
        outs = fpn(inputs)
        refs = _reference(fpn, inputs, 1, 4, extra=source, relu_extra=relu_extra, num_outs=5)
    _check(outs, refs)


def test_extra_convs_differ_from_maxpool():
    # same weights for the shared levels, P6 from a conv on C5 instead of pooling P5
    pooled = FPN(IN_CH, 16, num_outs=5, start_level=1)
    conv = FPN(IN_CH, 16, num_outs=5, start_level=1, add_extra_convs=True)
    assert conv.add_extra_convs == "on_input"
    conv.load_state_dict(pooled.state_dict(), strict=False)
    inputs = _inputs()
    with torch.no_grad():
        a, b = pooled(inputs), conv(inputs)
    for i in range(3):
        torch.testing.assert_close(a[i], b[i])
    assert torch.equal(a[3], a[2][:, :, ::2, ::2])
    torch.testing.assert_close(b[3], _conv3x3(conv.fpn_convs[3], inputs[3], stride=2))
    assert a[3].shape == b[3].shape and not torch.allclose(a[3], b[3])


def test_end_level_is_inclusive_and_drops_higher_inputs():
    fpn = FPN(IN_CH, 16, num_outs=2, start_level=1, end_level=2)
    assert [m.conv.in_channels for m in fpn.lateral_convs] == [16, 32]
    inputs = _inputs()
    with torch.no_grad():
        outs = fpn(inputs)
        refs = _reference(fpn, inputs, 1, 3, num_outs=2)
    _check(outs, refs)


def test_scale_factor_upsampling_option():
    sizes = [(16, 24), (8, 12), (4, 6)]
    inputs = tuple(torch.randn(1, c, h, w) for c, (h, w) in zip(IN_CH[:3], sizes))
    fpn = FPN(IN_CH[:3], 8, num_outs=3, upsample_cfg=dict(scale_factor=2, mode="nearest"))
    with torch.no_grad():
        outs = fpn(inputs)
        lat = [_conv1x1(m, x) for m, x in zip(fpn.lateral_convs, inputs)]
        lat[1] = lat[1] + lat[2].repeat_interleave(2, 2).repeat_interleave(2, 3)
        lat[0] = lat[0] + lat[1].repeat_interleave(2, 2).repeat_interleave(2, 3)
    torch.testing.assert_close(outs[0], _conv3x3(fpn.fpn_convs[0], lat[0]))


def test_fpn_init_is_xavier_uniform_with_zero_bias():
    torch.manual_seed(0)
    fpn = FPN([256, 512], 256, num_outs=2)
    w = fpn.lateral_convs[1].conv.weight  # fan_in 512, fan_out 256
    bound = math.sqrt(6 / (512 + 256))
    assert w.abs().max() <= bound and w.abs().max() > 0.99 * bound
    assert abs(w.std().item() - bound / math.sqrt(3)) < 0.02 * bound
    assert all(torch.all(m.conv.bias == 0) for m in [*fpn.lateral_convs, *fpn.fpn_convs])


def test_fpn_with_group_norm_names():
    fpn = FPN([8, 16], 16, num_outs=2, norm_cfg=dict(type="GN", num_groups=4),
              no_norm_on_lateral=True)
    keys = set(fpn.state_dict())
    assert {"lateral_convs.0.conv.weight", "lateral_convs.0.conv.bias",
            "fpn_convs.0.conv.weight", "fpn_convs.0.gn.weight", "fpn_convs.1.gn.bias"} <= keys
    assert "fpn_convs.0.conv.bias" not in keys and "lateral_convs.0.gn.weight" not in keys


@pytest.mark.parametrize("kwargs", [
    dict(add_extra_convs="on_top"), dict(num_outs=3), dict(start_level=4),
    dict(end_level=2, num_outs=5), dict(end_level=7, num_outs=8),
])
def test_bad_fpn_arguments_raise_config_error(kwargs):
    args = dict(in_channels=IN_CH, out_channels=16, num_outs=5)
    args.update(kwargs)
    with pytest.raises(ConfigError):
        FPN(**args)


def test_wrong_number_of_inputs_raises():
    with pytest.raises(ConfigError, match="got 3 feature maps"):
        FPN(IN_CH, 16, num_outs=5)(_inputs()[1:])


# ---------------------------------------------------------------- ConvModule and norms

def test_conv_module_names_and_bias_auto():
    plain = ConvModule(4, 8, 3, padding=1)
    assert set(plain.state_dict()) == {"conv.weight", "conv.bias"}
    assert isinstance(plain.activate, nn.ReLU) and plain.activate.inplace
    bn = ConvModule(4, 8, 3, padding=1, norm_cfg=dict(type="BN"))
    assert set(bn.state_dict()) == {"conv.weight", "bn.weight", "bn.bias", "bn.running_mean",
                                    "bn.running_var", "bn.num_batches_tracked"}
    gn = ConvModule(4, 8, 3, norm_cfg=dict(type="GN", num_groups=2), act_cfg=None, bias=True)
    assert set(gn.state_dict()) == {"conv.weight", "conv.bias", "gn.weight", "gn.bias"}
    assert not hasattr(gn, "activate")
    leaky = ConvModule(4, 8, 1, act_cfg=dict(type="LeakyReLU", negative_slope=0.1),
                       inplace=False)
    assert leaky.activate.negative_slope == 0.1 and not leaky.activate.inplace


def test_conv_module_gn_relu_forward_matches_hand_computation():
    torch.manual_seed(0)
    m = ConvModule(4, 8, 3, stride=2, padding=1, norm_cfg=dict(type="GN", num_groups=2))
    with torch.no_grad():
        m.gn.weight.uniform_(0.5, 1.5)
        m.gn.bias.uniform_(-0.5, 0.5)
        x = torch.randn(2, 4, 9, 11)
        y = F.conv2d(x, m.conv.weight, stride=2, padding=1)
        groups = y.reshape(2, 2, -1)
        mean = groups.mean(-1, keepdim=True)
        var = groups.var(-1, unbiased=False, keepdim=True)
        y = ((groups - mean) / torch.sqrt(var + 1e-5)).reshape_as(y)
        y = torch.clamp(y * m.gn.weight[None, :, None, None] + m.gn.bias[None, :, None, None], 0)
        torch.testing.assert_close(m(x), y, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(m(x, activate=False).clamp(min=0), y, rtol=1e-5, atol=1e-5)


def test_conv_module_init_follows_mmcv():
    torch.manual_seed(0)
    m = ConvModule(256, 512, 1, norm_cfg=dict(type="BN"))  # kaiming normal, fan_out 512
    assert abs(m.conv.weight.std().item() - math.sqrt(2 / 512)) < 0.03 * math.sqrt(2 / 512)
    assert torch.all(m.bn.weight == 1) and torch.all(m.bn.bias == 0)


def test_build_norm_layer_types_and_options():
    assert isinstance(build_norm_layer(dict(type="BN"), 8), nn.BatchNorm2d)
    sync = build_norm_layer(dict(type="SyncBN", momentum=0.01), 8)
    assert isinstance(sync, nn.SyncBatchNorm) and sync.momentum == 0.01 and sync.eps == 1e-5
    gn = build_norm_layer(dict(type="GN", num_groups=4, eps=1e-6), 8)
    assert isinstance(gn, nn.GroupNorm) and gn.num_groups == 4 and gn.eps == 1e-6
    frozen_grad = build_norm_layer(dict(type="BN", requires_grad=False), 8)
    assert not any(p.requires_grad for p in frozen_grad.parameters())
    assert isinstance(build_norm_layer(dict(type="FrozenBN"), 8), FrozenBatchNorm2d)
    for bad in (dict(type="LN2"), dict(type="GN"), dict(type="GN", num_groups=3), "BN"):
        with pytest.raises(ConfigError):
            build_norm_layer(bad, 8)
