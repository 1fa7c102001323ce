"""ResNeXt, RegNetX, GroupNorm, Weight Standardization and DCN backbones; their configs.

Independent references:
  - key/shape lists built here from the published architectures: ResNeXt's per-group width
    d = base_width * 2**stage (Xie et al.), RegNetX-3.2GF widths [96, 192, 432, 1008], depths
    [2, 6, 15, 2], group width 48 (Radosavovic et al.; mmdet's FPN in_channels);
  - parameter counts of the ImageNet models as published in mmpretrain's ResNeXt and RegNet
    tables (backbone + the 1000-way fc layer);
  - functional forwards written with F.conv2d (grouped convs by per-group slicing);
  - for DCN: a fresh DCNv2 stage computes half of its conv (mask sigmoid(0) = 0.5), so it must
    equal a plain ResNet whose conv2 weights are halved; DCNv1 must equal the plain ResNet.
"""
import math
import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from detzoo.config import load_config
from detzoo.data import NORM_PRESETS
from detzoo.data.class_names import COCO_CLASSES
from detzoo.errors import ConfigError
from detzoo.models.backbones import RegNet, ResNet, ResNeXt
from detzoo.models.builder import build_detector
from detzoo.models.layers import ConvModule, ConvWS2d, build_conv_layer
from detzoo.models.necks import FPN
from detzoo.ops import DeformConv2dPack, ModulatedDeformConv2dPack


def _meta(cls, *args, **kwargs):
    with torch.device("meta"):
        return cls(*args, **kwargs)


def _shapes(model):
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _bn(prefix, channels):
    return {f"{prefix}.weight": (channels,), f"{prefix}.bias": (channels,),
            f"{prefix}.running_mean": (channels,), f"{prefix}.running_var": (channels,),
            f"{prefix}.num_batches_tracked": ()}


def _resnext_layout(blocks, groups, base_width):
    """mmdet ResNeXt state dict shapes from the paper's rule: d = base_width * 2**stage."""
    layout = {"conv1.weight": (64, 3, 7, 7), **_bn("bn1", 64)}
    inplanes = 64
    for stage, num in enumerate(blocks):
        width = groups * base_width * 2 ** stage
        out = 256 * 2 ** stage
        for j in range(num):
            p = f"layer{stage + 1}.{j}"
            layout[f"{p}.conv1.weight"] = (width, inplanes, 1, 1)
            layout.update(_bn(f"{p}.bn1", width))
            layout[f"{p}.conv2.weight"] = (width, width // groups, 3, 3)
            layout.update(_bn(f"{p}.bn2", width))
            layout[f"{p}.conv3.weight"] = (out, width, 1, 1)
            layout.update(_bn(f"{p}.bn3", out))
            if j == 0:
                layout[f"{p}.downsample.0.weight"] = (out, inplanes, 1, 1)
                layout.update(_bn(f"{p}.downsample.1", out))
            inplanes = out
    return layout


RESNET50 = _resnext_layout((3, 4, 6, 3), groups=1, base_width=64)  # d = 64: plain ResNet-50


def _randomise(model, seed=0):
    """Random weights and BN statistics (the default init zeroes the residual branches)."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, v in model.state_dict().items():
        if not v.is_floating_point():
            sd[k] = v
        elif v.dim() == 4:
            sd[k] = torch.randn(v.shape, generator=g) * math.sqrt(2.0 / v[0].numel())
        elif k.endswith("running_var"):
            sd[k] = torch.rand(v.shape, generator=g) + 0.5
        elif k.endswith("weight"):
            sd[k] = torch.rand(v.shape, generator=g) * 0.8 + 0.2
        else:
            sd[k] = torch.randn(v.shape, generator=g) * 0.1
    model.load_state_dict(sd)
    return sd


def _bn_ref(x, sd, prefix, eps=1e-5):
    w, b, m, v = (sd[f"{prefix}.{n}"][None, :, None, None]
                  for n in ("weight", "bias", "running_mean", "running_var"))
    return (x - m) / torch.sqrt(v + eps) * w + b


def _sliced_group_conv(x, weight, groups, stride=1, padding=0):
    cin, cout = x.shape[1] // groups, weight.shape[0] // groups
    return torch.cat([F.conv2d(x[:, g * cin:(g + 1) * cin], weight[g * cout:(g + 1) * cout],
                               stride=stride, padding=padding) for g in range(groups)], dim=1)


def _num_params(model):
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------- ResNeXt

def test_resnext101_32x4d_layout_follows_the_architecture():
    model = _meta(ResNeXt, depth=101, groups=32, base_width=4)
    mine = _shapes(model)
    ref = _resnext_layout((3, 4, 23, 3), groups=32, base_width=4)
    assert sorted(set(mine) ^ set(ref)) == []
    assert {k: s for k, s in mine.items() if ref[k] != s} == {}
    # spot checks: mmdet resnext101_32x4d layer1.0.conv2.weight is [128, 4, 3, 3]
    assert mine["layer1.0.conv2.weight"] == (128, 4, 3, 3)
    assert mine["layer4.2.conv3.weight"] == (2048, 1024, 1, 1)
    assert model.out_channels == [256, 512, 1024, 2048]


@pytest.mark.parametrize("depth,groups,base_width,published_m", [
    (50, 32, 4, 25.03), (101, 32, 4, 44.18), (101, 32, 8, 88.79), (152, 32, 4, 59.95),
])
def test_resnext_parameter_counts_match_published(depth, groups, base_width, published_m):
    # mmpretrain configs/resnext/README.md "Params(M)"; the classifier is fc 2048 -> 1000
    model = _meta(ResNeXt, depth=depth, groups=groups, base_width=base_width)
    assert round((_num_params(model) + 2048 * 1000 + 1000) / 1e6, 2) == published_m


def test_resnext_64x4d_and_32x8d_widths():
    for groups, base_width, width in ((64, 4, 256), (32, 8, 256)):
        sd = _shapes(_meta(ResNeXt, depth=101, groups=groups, base_width=base_width))
        assert sd["layer1.0.conv2.weight"] == (width, width // groups, 3, 3)
        assert sd["layer4.0.conv1.weight"] == (width * 8, 1024, 1, 1)


def test_resnext_with_one_group_is_resnet():
    two_stages = dict(num_stages=2, strides=(1, 2), dilations=(1, 1), out_indices=(0, 1))
    resnext = ResNeXt(depth=50, groups=1, base_width=4, **two_stages).eval()
    sd = _randomise(resnext)
    resnet = ResNet(depth=50, **two_stages).eval()
    resnet.load_state_dict(sd)  # strict: same keys and shapes
    x = torch.randn(1, 3, 40, 48)
    with torch.no_grad():
        for a, b in zip(resnext(x), resnet(x)):
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize("style", ["pytorch", "caffe"])
def test_resnext_block_matches_sliced_group_reference(style):
    model = ResNeXt(depth=50, groups=32, base_width=4, style=style, num_stages=2, strides=(1, 2),
                    dilations=(1, 1), out_indices=(0, 1)).eval()
    _randomise(model, seed=1)
    block = model.layer2[0]  # strided, projected shortcut, 256 channels in, width 256
    sd = {f"layer2.0.{k}": v for k, v in block.state_dict().items()}
    x = torch.randn(2, 256, 9, 10)
    s1, s2 = (1, 2) if style == "pytorch" else (2, 1)
    p = "layer2.0"
    ref = F.relu(_bn_ref(F.conv2d(x, sd[f"{p}.conv1.weight"], stride=s1), sd, f"{p}.bn1"))
    ref = F.relu(_bn_ref(_sliced_group_conv(ref, sd[f"{p}.conv2.weight"], 32, s2, 1), sd,
                         f"{p}.bn2"))
    ref = _bn_ref(F.conv2d(ref, sd[f"{p}.conv3.weight"]), sd, f"{p}.bn3")
    shortcut = _bn_ref(F.conv2d(x, sd[f"{p}.downsample.0.weight"], stride=2), sd,
                       f"{p}.downsample.1")
    ref = F.relu(ref + shortcut)
    with torch.no_grad():
        out = block(x)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- RegNet

def _regnet_layout(widths, depths, group_width, stem=32):
    layout = {"conv1.weight": (stem, 3, 3, 3), **_bn("bn1", stem)}
    inplanes = stem
    for stage, (w, num) in enumerate(zip(widths, depths)):
        for j in range(num):
            p = f"layer{stage + 1}.{j}"
            layout[f"{p}.conv1.weight"] = (w, inplanes, 1, 1)
            layout[f"{p}.conv2.weight"] = (w, group_width, 3, 3)
            layout[f"{p}.conv3.weight"] = (w, w, 1, 1)
            for i in (1, 2, 3):
                layout.update(_bn(f"{p}.bn{i}", w))
            if j == 0:
                layout[f"{p}.downsample.0.weight"] = (w, inplanes, 1, 1)
                layout.update(_bn(f"{p}.downsample.1", w))
            inplanes = w
    return layout


def test_regnetx_3_2gf_layout_follows_the_published_architecture():
    model = _meta(RegNet, arch="regnetx_3.2gf")
    mine = _shapes(model)
    ref = _regnet_layout([96, 192, 432, 1008], [2, 6, 15, 2], group_width=48)
    assert sorted(set(mine) ^ set(ref)) == []
    assert {k: s for k, s in mine.items() if ref[k] != s} == {}
    assert model.out_channels == [96, 192, 432, 1008]
    assert mine["layer1.0.conv2.weight"] == (96, 48, 3, 3)  # 2 groups of 48
    assert mine["layer4.1.conv2.weight"] == (1008, 48, 3, 3)  # 21 groups of 48


# (FPN in_channels of mmdet's configs/regnet/*, mmpretrain "Params(M)" of the ImageNet models)
REGNETX = {
    "regnetx_400mf": ([32, 64, 160, 384], 5.16),
    "regnetx_800mf": ([64, 128, 288, 672], 7.26),
    "regnetx_1.6gf": ([72, 168, 408, 912], 9.19),
    "regnetx_3.2gf": ([96, 192, 432, 1008], 15.3),
    "regnetx_4.0gf": ([80, 240, 560, 1360], 22.12),
    "regnetx_6.4gf": ([168, 392, 784, 1624], 26.21),
    "regnetx_8.0gf": ([80, 240, 720, 1920], 39.57),
    "regnetx_12gf": ([224, 448, 896, 2240], 46.11),
}


@pytest.mark.parametrize("arch", sorted(REGNETX))
def test_regnetx_presets_widths_and_parameter_counts(arch):
    widths, params_m = REGNETX[arch]
    model = _meta(RegNet, arch=arch)
    assert model.out_channels == widths
    total = _num_params(model) + widths[-1] * 1000 + 1000  # + the 1000-way classifier
    digits = len(str(params_m).split(".")[1])
    assert round(total / 1e6, digits) == params_m


def test_regnetx_400mf_matches_functional_reference():
    # RegNetX-400MF: widths [32, 64, 160, 384], depths [1, 2, 7, 12], group width 16
    model = RegNet(arch="regnetx_400mf").eval()
    sd = _randomise(model, seed=2)
    x = torch.randn(1, 3, 40, 24)
    with torch.no_grad():
        outs = model(x)
        y = F.relu(_bn_ref(F.conv2d(x, sd["conv1.weight"], stride=2, padding=1), sd, "bn1"))
        refs = []
        for stage, (w, num) in enumerate(zip([32, 64, 160, 384], [1, 2, 7, 12])):
            for j in range(num):
                p, stride = f"layer{stage + 1}.{j}", 2 if j == 0 else 1
                out = F.relu(_bn_ref(F.conv2d(y, sd[f"{p}.conv1.weight"]), sd, f"{p}.bn1"))
                out = F.relu(_bn_ref(F.conv2d(out, sd[f"{p}.conv2.weight"], stride=stride,
                                              padding=1, groups=w // 16), sd, f"{p}.bn2"))
                out = _bn_ref(F.conv2d(out, sd[f"{p}.conv3.weight"]), sd, f"{p}.bn3")
                short = y if j else _bn_ref(F.conv2d(y, sd[f"{p}.downsample.0.weight"],
                                                     stride=2), sd, f"{p}.downsample.1")
                y = F.relu(out + short)
            refs.append(y)
    assert [tuple(o.shape[2:]) for o in outs] == [(10, 6), (5, 3), (3, 2), (2, 1)]
    for out, ref in zip(outs, refs):
        torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())


def test_regnet_freezing_and_errors():
    model = RegNet(arch="regnetx_400mf", frozen_stages=1).train()
    assert not model.conv1.weight.requires_grad and not model.layer1[0].conv2.weight.requires_grad
    assert model.layer2[0].conv2.weight.requires_grad
    assert not model.bn1.training and not model.layer3[0].bn1.training  # norm_eval
    with pytest.raises(ConfigError, match="regnetx_9gf"):
        RegNet(arch="regnetx_9gf")
    with pytest.raises(ConfigError, match="group_w"):
        RegNet(arch=dict(w0=24, wa=24.48, wm=2.54, depth=22))


def test_regnet_norm_preset_is_pycls():
    assert NORM_PRESETS["regnet"] == dict(mean=[103.53, 116.28, 123.675],
                                          std=[57.375, 57.12, 58.395], to_rgb=False)


# ---------------------------------------------------------------- GroupNorm naming

def _gn_layout(bn_layout):
    """mmcv names a GroupNorm 'gn<postfix>'; it has weight and bias only."""
    layout = {}
    for key, shape in bn_layout.items():
        if key.rsplit(".", 1)[1] in ("running_mean", "running_var", "num_batches_tracked"):
            continue
        layout[re.sub(r"(^|\.)bn(\d)\.", r"\1gn\2.", key)] = shape
    return layout


def test_resnet50_gn_names_follow_mmcv():
    model = _meta(ResNet, depth=50, norm_cfg=dict(type="GN", num_groups=32, requires_grad=True))
    assert _shapes(model) == _gn_layout(RESNET50)
    keys = set(_shapes(model))
    assert {"gn1.weight", "layer1.0.gn3.bias", "layer3.0.downsample.1.weight"} <= keys
    gn = model.layer2[0].gn2
    assert isinstance(gn, nn.GroupNorm) and gn.num_groups == 32 and gn.eps == 1e-5


def test_fpn_and_conv_module_gn_names():
    norm_cfg = dict(type="GN", num_groups=32, requires_grad=True)
    fpn = _meta(FPN, in_channels=[256, 512, 1024, 2048], out_channels=256, num_outs=5,
                norm_cfg=norm_cfg)
    expected = {}
    for i, c in enumerate([256, 512, 1024, 2048]):
        expected[f"lateral_convs.{i}.conv.weight"] = (256, c, 1, 1)
        expected[f"fpn_convs.{i}.conv.weight"] = (256, 256, 3, 3)
        for name in ("lateral_convs", "fpn_convs"):
            expected[f"{name}.{i}.gn.weight"] = (256,)
            expected[f"{name}.{i}.gn.bias"] = (256,)
    assert _shapes(fpn) == expected  # a norm after the conv: no conv bias


# ---------------------------------------------------------------- Weight Standardization

def _standardised(weight, eps=1e-5):
    w = weight.detach().double().numpy()
    flat = w.reshape(w.shape[0], -1)
    mean = flat.mean(axis=1).reshape(-1, 1, 1, 1)
    std = flat.std(axis=1, ddof=1).reshape(-1, 1, 1, 1)  # torch.std: unbiased
    return torch.from_numpy((w - mean) / (std + eps))


def test_conv_ws_equals_conv_with_standardised_weight():
    torch.manual_seed(0)
    conv = ConvWS2d(6, 4, 3, stride=2, padding=1, groups=2, bias=True)
    x = torch.randn(2, 6, 9, 8, dtype=torch.float64)
    ref = F.conv2d(x, _standardised(conv.weight), conv.bias.double(), stride=2, padding=1,
                   groups=2)
    out = conv.double()(x)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    assert set(conv.state_dict()) == {"weight", "bias"}


def test_resnet_and_conv_module_use_conv_ws():
    ws = dict(type="ConvWS")
    model = _meta(ResNet, depth=50, conv_cfg=ws)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 1 + 16 * 3 + 4 and all(isinstance(m, ConvWS2d) for m in convs)
    assert _shapes(model) == RESNET50
    module = ConvModule(4, 8, 3, padding=1, conv_cfg=ws,
                        norm_cfg=dict(type="GN", num_groups=4)).double()
    assert isinstance(module.conv, ConvWS2d) and set(module.state_dict()) == {
        "conv.weight", "gn.weight", "gn.bias"}
    x = torch.randn(1, 4, 5, 5, dtype=torch.float64)
    ref = F.relu(F.group_norm(F.conv2d(x, _standardised(module.conv.weight), padding=1), 4,
                              module.gn.weight, module.gn.bias, eps=1e-5))
    torch.testing.assert_close(module(x), ref)


def test_build_conv_layer_types_and_errors():
    assert type(build_conv_layer(None, 2, 3, 1)) is nn.Conv2d
    layer = build_conv_layer(dict(type="DCNv2", deformable_groups=2), 4, 4, 3, padding=1)
    assert isinstance(layer, ModulatedDeformConv2dPack) and layer.deform_groups == 2
    assert isinstance(build_conv_layer(dict(type="DCN"), 4, 4, 3, bias=False), DeformConv2dPack)
    with pytest.raises(ConfigError, match="no bias"):
        build_conv_layer(dict(type="DCN"), 4, 4, 3, bias=True)
    with pytest.raises(ConfigError, match="ConvWS"):
        build_conv_layer(dict(type="ConvXS"), 4, 4, 3)


# ---------------------------------------------------------------- deformable convolutions

def _dcn_layout(dg, per_tap):
    layout = dict(RESNET50)
    for stage, num in ((1, 4), (2, 6), (3, 3)):
        planes = 64 * 2 ** stage
        for j in range(num):
            layout[f"layer{stage + 1}.{j}.conv2.conv_offset.weight"] = (dg * per_tap, planes, 3, 3)
            layout[f"layer{stage + 1}.{j}.conv2.conv_offset.bias"] = (dg * per_tap,)
    return layout


C3_C5 = (False, True, True, True)


@pytest.mark.parametrize("kind,dg,per_tap", [("DCN", 1, 18), ("DCNv2", 1, 27), ("DCNv2", 4, 27)])
def test_resnet50_dcn_layout(kind, dg, per_tap):
    model = _meta(ResNet, depth=50, dcn=dict(type=kind, deform_groups=dg,
                                             fallback_on_stride=False), stage_with_dcn=C3_C5)
    assert _shapes(model) == _dcn_layout(dg, per_tap)
    conv2 = model.layer2[0].conv2
    assert conv2.stride == (2, 2) and conv2.conv_offset.stride == (2, 2)
    assert conv2.bias is None  # mmdet builds conv2 with bias=False
    assert isinstance(model.layer1[0].conv2, nn.Conv2d)


def test_fresh_dcn_resnet_relates_to_plain_resnet():
    # three stages (DCN in c3, c4) keep it quick; c5 is built like c4
    small = dict(num_stages=3, strides=(1, 2, 2), dilations=(1, 1, 1), out_indices=(0, 1, 2))
    dcn_stages = (False, True, True)
    dcn2 = ResNet(depth=50, dcn=dict(type="DCNv2", deform_groups=1, fallback_on_stride=False),
                  stage_with_dcn=dcn_stages, **small).eval()
    sd = _randomise(dcn2, seed=4)
    offsets = {k for k in sd if "conv_offset" in k}
    for k in offsets:  # what init gives: zero offsets, mask logits 0 -> mask 0.5
        sd[k] = torch.zeros_like(sd[k])
    dcn2.load_state_dict(sd)
    plain_sd = {k: v for k, v in sd.items() if k not in offsets}
    halved = {k: (0.5 * v if re.match(r"layer[23]\.\d+\.conv2\.weight$", k) else v)
              for k, v in plain_sd.items()}
    plain = ResNet(depth=50, **small).eval()
    x = torch.randn(1, 3, 36, 44)
    with torch.no_grad():
        plain.load_state_dict(halved)
        for a, b in zip(dcn2(x), plain(x)):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * b.abs().max().item())
        # DCNv1 with zero offsets (its init) is the plain ResNet with the same weights
        dcn1 = ResNet(depth=50, dcn=dict(type="DCN", deform_groups=1),
                      stage_with_dcn=dcn_stages, **small)
        result = dcn1.eval().load_state_dict(plain_sd, strict=False)
        assert sorted(result.missing_keys) == sorted(offsets) and not result.unexpected_keys
        plain.load_state_dict(plain_sd)
        for a, b in zip(dcn1(x), plain(x)):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * b.abs().max().item())
        # non-zero offsets move the samples: the output changes
        dcn1.layer3[0].conv2.conv_offset.bias.fill_(0.37)
        assert not torch.allclose(dcn1(x)[2], plain(x)[2], atol=1e-3)


def test_dcn_init_keeps_offsets_zero_and_fallback_on_stride():
    model = ResNet(depth=50, dcn=dict(type="DCNv2", deform_groups=1, fallback_on_stride=True),
                   stage_with_dcn=C3_C5)
    model.init_weights()
    offset_convs = [m.conv_offset for m in model.modules() if hasattr(m, "conv_offset")]
    assert offset_convs and all(not c.weight.any() and not c.bias.any() for c in offset_convs)
    # fallback: a block whose conv2 strides keeps a plain conv
    assert type(model.layer2[0].conv2) is nn.Conv2d and type(model.layer3[0].conv2) is nn.Conv2d
    assert isinstance(model.layer2[1].conv2, ModulatedDeformConv2dPack)
    bound = 1 / math.sqrt(128 * 9)  # mmcv's uniform init of the deformable weight
    assert model.layer2[1].conv2.weight.abs().max() <= bound


def test_resnext_dcn_is_grouped_and_legacy_offset_keys_load():
    model = _meta(ResNeXt, depth=50, groups=32, base_width=4,
                  dcn=dict(type="DCN", deform_groups=1), stage_with_dcn=C3_C5)
    sd = _shapes(model)
    assert sd["layer2.0.conv2.weight"] == (256, 8, 3, 3)
    assert sd["layer2.0.conv2.conv_offset.weight"] == (18, 256, 3, 3)
    # mmdet 1.x checkpoints store conv2_offset beside conv2
    model = ResNet(depth=50, dcn=dict(type="DCNv2", deform_groups=1), stage_with_dcn=C3_C5)
    state = model.state_dict()
    legacy = {k.replace("conv2.conv_offset", "conv2_offset"): torch.full_like(v, 0.25)
              if "conv_offset" in k else v for k, v in state.items()}
    assert "layer3.2.conv2_offset.weight" in legacy
    model.load_state_dict(legacy, strict=True)
    assert torch.all(model.layer3[2].conv2.conv_offset.weight == 0.25)


@pytest.mark.parametrize("kwargs,match", [
    (dict(depth=18, dcn=dict(type="DCN"), stage_with_dcn=C3_C5), "Bottleneck"),
    (dict(depth=50, dcn=dict(type="DCN"), conv_cfg=dict(type="ConvWS"), stage_with_dcn=C3_C5),
     "conv_cfg"),
    (dict(depth=50, dcn=dict(type="ConvWS")), "DCNv2"),
    (dict(depth=50, dcn=dict(type="DCN"), stage_with_dcn=(True,)), "stage_with_dcn"),
])
def test_dcn_argument_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        _meta(ResNet, **kwargs)


# ---------------------------------------------------------------- configs

def _build(name):
    cfg = load_config(name)
    with torch.device("meta"):
        return cfg, build_detector(cfg["model"], class_names=COCO_CLASSES)


@pytest.mark.parametrize("name,groups", [
    ("faster_rcnn_x101_32x4d_fpn_1x_coco", 32), ("faster_rcnn_x101_32x4d_fpn_2x_coco", 32),
    ("faster_rcnn_x101_64x4d_fpn_1x_coco", 64), ("faster_rcnn_x101_64x4d_fpn_2x_coco", 64),
])
def test_resnext_configs_build(name, groups):
    cfg, model = _build(name)
    assert type(model.backbone) is ResNeXt and model.backbone.groups == groups
    assert _shapes(model.backbone) == _resnext_layout((3, 4, 23, 3), groups, 4)
    assert cfg["runner"]["max_epochs"] == (12 if "_1x_" in name else 24)
    assert model.backbone.frozen_stages == 1 and model.backbone.norm_eval


@pytest.mark.parametrize("name,epochs", [("faster_rcnn_regnetx-3.2GF_fpn_1x_coco", 12),
                                         ("faster_rcnn_regnetx-3.2GF_fpn_2x_coco", 24)])
def test_regnet_configs_build(name, epochs):
    cfg, model = _build(name)
    assert type(model.backbone) is RegNet and model.backbone.out_channels == [96, 192, 432, 1008]
    assert _shapes(model.backbone) == _regnet_layout([96, 192, 432, 1008], [2, 6, 15, 2], 48)
    assert cfg["model"]["neck"]["in_channels"] == [96, 192, 432, 1008]
    assert cfg["optimizer"]["weight_decay"] == 0.00005 and cfg["runner"]["max_epochs"] == epochs
    pipelines = cfg["data"]["train"]["pipeline"] + cfg["data"]["test"]["pipeline"][1]["transforms"]
    steps = [s for s in pipelines if s["type"].__name__ == "Normalize"]
    assert len(steps) == 2
    for step in steps:
        assert {k: step[k] for k in ("mean", "std", "to_rgb")} == NORM_PRESETS["pycls"]


@pytest.mark.parametrize("name,depth,kind,dg,groups", [
    ("faster_rcnn_r50_fpn_dconv_c3-c5_1x_coco", 50, DeformConv2dPack, 1, 1),
    ("faster_rcnn_r50_fpn_mdconv_c3-c5_1x_coco", 50, ModulatedDeformConv2dPack, 1, 1),
    ("faster_rcnn_r50_fpn_mdconv_c3-c5_group4_1x_coco", 50, ModulatedDeformConv2dPack, 4, 1),
    ("faster_rcnn_r101_fpn_dconv_c3-c5_1x_coco", 101, DeformConv2dPack, 1, 1),
    ("faster_rcnn_x101_32x4d_fpn_dconv_c3-c5_1x_coco", 101, DeformConv2dPack, 1, 32),
])
def test_dcn_configs_build(name, depth, kind, dg, groups):
    _, model = _build(name)
    backbone = model.backbone
    assert backbone.depth == depth
    layers = [getattr(backbone, f"layer{i}") for i in (1, 2, 3, 4)]
    assert all(type(b.conv2) is nn.Conv2d for b in layers[0])
    deform = [b.conv2 for layer in layers[1:] for b in layer]
    assert all(type(c) is kind and c.deform_groups == dg and c.groups == groups for c in deform)


GN_WS_CONFIGS = ["faster_rcnn_r50_fpn_gn_ws-all_1x_coco", "faster_rcnn_r101_fpn_gn_ws-all_1x_coco",
                 "faster_rcnn_r50_fpn_gn-all_2x_coco"]


@pytest.mark.parametrize("name", GN_WS_CONFIGS)
def test_gn_configs_build(name):
    _, model = _build(name)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    keys = set(shapes)
    assert {"backbone.gn1.weight", "backbone.layer1.0.gn3.bias", "neck.lateral_convs.0.gn.weight",
            "neck.fpn_convs.3.gn.bias"} <= keys
    # MMDetection's Shared4Conv1FCBBoxHead: 4 x (conv 3x3 256 + GN), one fc 256*7*7 -> 1024
    head = {k[len("roi_head.bbox_head."):]: v for k, v in shapes.items() if k.startswith("roi_head.bbox_head.")}
    assert head == {**{f"shared_convs.{i}.{p}": s for i in range(4) for p, s in
                       (("conv.weight", (256, 256, 3, 3)), ("gn.weight", (256,)), ("gn.bias", (256,)))},
                    "shared_fcs.0.weight": (1024, 12544), "shared_fcs.0.bias": (1024,),
                    "fc_cls.weight": (81, 1024), "fc_cls.bias": (81,), "fc_reg.weight": (320, 1024),
                    "fc_reg.bias": (320,)}
    assert not any(".bn" in k for k in keys)
    uses_ws = "gn_ws" in name
    assert isinstance(model.backbone.conv1, ConvWS2d) == uses_ws
    assert isinstance(model.neck.fpn_convs[0].conv, ConvWS2d) == uses_ws


@pytest.mark.parametrize("name", GN_WS_CONFIGS)
def test_gn_configs_backbone_neck_and_head_arguments(name):
    from detzoo.config import instantiate

    cfg = load_config(name)
    uses_ws = "gn_ws" in name
    gn = dict(type="GN", num_groups=32, requires_grad=True)
    head = cfg["model"]["roi_head"]["bbox_head"]
    assert head["type"].__name__ == "Shared4Conv1FCBBoxHead"
    assert head["conv_out_channels"] == 256 and head["norm_cfg"] == gn
    assert head.get("conv_cfg") == (dict(type="ConvWS") if uses_ws else None)
    with torch.device("meta"):
        backbone = instantiate(cfg["model"]["backbone"])
        neck = instantiate(cfg["model"]["neck"])
    depth = 101 if "r101" in name else 50
    blocks = (3, 4, 23, 3) if depth == 101 else (3, 4, 6, 3)
    assert _shapes(backbone) == _gn_layout(_resnext_layout(blocks, groups=1, base_width=64))
    assert all(isinstance(m, ConvWS2d) == uses_ws
               for m in backbone.modules() if isinstance(m, nn.Conv2d))
    assert isinstance(neck.lateral_convs[0].conv, ConvWS2d) == uses_ws
    assert set(_shapes(neck)) == {f"{n}.{i}.{p}" for n in ("lateral_convs", "fpn_convs")
                                  for i in range(4) for p in ("conv.weight", "gn.weight", "gn.bias")}
    normalize = [s for s in cfg["data"]["test"]["pipeline"][1]["transforms"]
                 if s["type"].__name__ == "Normalize"][0]
    preset = "pytorch" if uses_ws else "caffe"  # jhu GN+WS weights vs Detectron's GN weights
    assert {k: normalize[k] for k in ("mean", "std", "to_rgb")} == NORM_PRESETS[preset]
