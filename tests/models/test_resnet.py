"""ResNet backbone: MMDetection key layout, shapes, stride placement, freezing, init, loading.

The numeric reference is a functional ResNet written here from the paper/MMDetection description
(convs with F.conv2d, batch norm and the ResNet-D average pool by hand) and fed the model's state
dict; the key layout is compared with MMDetection 3.3's dumped ResNet-50 layout.
"""
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from shared_paths import layout_dir, layout_fingerprint
from detzoo.errors import CheckpointError, ConfigError
from detzoo.models.backbones import ResNet
from detzoo.models.layers import FrozenBatchNorm2d

# ---------------------------------------------------------------- layout against MMDetection


_layout_dir = layout_dir
_fingerprint = layout_fingerprint


# mmdet 3.3.0 ResNet(depth=50) state dict, from resnet50_pytorch_backbone.json
RESNET50_LAYOUT = (318, "84b073b44cca1f761379fde2e5b9b081f9793073bc9fd95a2f038e4269a65239")


@pytest.mark.parametrize("style", ["pytorch", "caffe"])
def test_resnet50_keys_and_shapes_match_mmdet(style):
    model = ResNet(depth=50, style=style, frozen_stages=1)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    layout_dir = _layout_dir()
    if layout_dir is not None:
        layout = json.loads((layout_dir / "resnet50_pytorch_backbone.json").read_text())["layout"]
        ref = {k: tuple(s) for k, s in layout}
        assert sorted(set(ours) - set(ref)) == [] and sorted(set(ref) - set(ours)) == []
        assert {k: s for k, s in ours.items() if ref[k] != s} == {}
    assert (len(ours), _fingerprint(ours.items())) == RESNET50_LAYOUT


def test_deep_stem_and_avg_down_key_names():
    # mmdet ResNetV1d: stem = [conv, norm, relu] x 3; avg_down shortcut = [AvgPool, conv, norm]
    # only where the stage strides (layer1 keeps [conv, norm]).
    sd = {k: tuple(v.shape) for k, v in
          ResNet(depth=50, deep_stem=True, avg_down=True).state_dict().items()}
    assert sd["stem.0.weight"] == (32, 3, 3, 3)
    assert sd["stem.3.weight"] == (32, 32, 3, 3)
    assert sd["stem.6.weight"] == (64, 32, 3, 3)
    assert {"stem.1.weight", "stem.4.running_var", "stem.7.bias"} <= set(sd)
    assert "conv1.weight" not in sd and "bn1.weight" not in sd
    assert sd["layer1.0.downsample.0.weight"] == (256, 64, 1, 1)
    assert "layer1.0.downsample.2.weight" not in sd
    assert sd["layer2.0.downsample.1.weight"] == (512, 256, 1, 1)
    assert sd["layer2.0.downsample.2.running_mean"] == (512,)
    assert not any(k.startswith("layer2.0.downsample.0.") for k in sd)


def test_group_norm_names_follow_mmcv_abbreviation():
    sd = ResNet(depth=18, norm_cfg=dict(type="GN", num_groups=32)).state_dict()
    assert {"gn1.weight", "layer1.0.gn1.weight", "layer1.0.gn2.bias",
            "layer2.0.downsample.1.weight"} <= set(sd)
    assert not any(".bn" in k or k.startswith("bn") for k in sd)


# ---------------------------------------------------------------- shapes and strides

@pytest.mark.parametrize("depth", [18, 34, 50, 101, 152])
def test_output_shapes_and_strides(depth):
    model = ResNet(depth=depth).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 96))
    widths = (64, 128, 256, 512) if depth in (18, 34) else (256, 512, 1024, 2048)
    expected = [(1, c, 64 // s, 96 // s) for c, s in zip(widths, (4, 8, 16, 32))]
    assert [tuple(o.shape) for o in outs] == expected


@pytest.mark.parametrize("style", ["pytorch", "caffe"])
def test_odd_input_size_rounds_like_conv_arithmetic(style):
    # conv7 s2 p3 then maxpool3 s2 p1 then stride-2 stages: n -> floor((n - 1) / 2) + 1
    model = ResNet(depth=50, style=style, out_indices=(0, 1, 2, 3)).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 65, 97))
    assert [tuple(o.shape[2:]) for o in outs] == [(17, 25), (9, 13), (5, 7), (3, 4)]


def test_out_indices_and_num_stages():
    model = ResNet(depth=18, num_stages=3, strides=(1, 2, 2), dilations=(1, 1, 1),
                   out_indices=(1, 2)).eval()
    assert not hasattr(model, "layer4")
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(1, 128, 8, 8), (1, 256, 4, 4)]


def test_dilated_last_stage_keeps_resolution():
    model = ResNet(depth=50, strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2),
                   out_indices=(3,)).eval()
    assert model.layer4[1].conv2.dilation == (2, 2) and model.layer4[1].conv2.padding == (2, 2)
    with torch.no_grad():
        (out,) = model(torch.randn(1, 3, 64, 96))
    assert tuple(out.shape) == (1, 2048, 4, 6)


def test_stride_placement_pytorch_vs_caffe():
    py, caffe = ResNet(depth=50, style="pytorch"), ResNet(depth=50, style="caffe")
    assert (py.layer2[0].conv1.stride, py.layer2[0].conv2.stride) == ((1, 1), (2, 2))
    assert (caffe.layer2[0].conv1.stride, caffe.layer2[0].conv2.stride) == ((2, 2), (1, 1))
    for m in (py, caffe):
        assert m.layer2[0].downsample[0].stride == (2, 2)
        assert (m.layer1[0].conv1.stride, m.layer1[0].conv2.stride) == ((1, 1), (1, 1))
        assert m.layer2[1].conv1.stride == m.layer2[1].conv2.stride == (1, 1)


def test_channels_last_input_gives_same_features():
    model = ResNet(depth=18).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)
        out = model(x.to(memory_format=torch.channels_last))
    for a, b in zip(ref, out):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- numeric reference

def _bn(x, sd, prefix, eps=1e-5):
    w, b, m, v = (sd[f"{prefix}.{n}"][None, :, None, None]
                  for n in ("weight", "bias", "running_mean", "running_var"))
    return (x - m) / torch.sqrt(v + eps) * w + b


def _avg_pool2_ceil(x):
    # 2x2/2 average with ceil mode, averaging only the pixels inside the image
    h, w = x.shape[2:]
    pad = (0, w % 2, 0, h % 2)
    summed = F.pad(x, pad).unfold(2, 2, 2).unfold(3, 2, 2).sum((-1, -2))
    count = F.pad(torch.ones_like(x[:1, :1]), pad).unfold(2, 2, 2).unfold(3, 2, 2).sum((-1, -2))
    return summed / count


def _reference_resnet50(sd, x, style="pytorch", deep_stem=False, avg_down=False):
    if deep_stem:
        for conv, bn, stride in ((0, 1, 2), (3, 4, 1), (6, 7, 1)):
            x = F.relu(_bn(F.conv2d(x, sd[f"stem.{conv}.weight"], stride=stride, padding=1),
                           sd, f"stem.{bn}"))
    else:
        x = F.relu(_bn(F.conv2d(x, sd["conv1.weight"], stride=2, padding=3), sd, "bn1"))
    x = F.max_pool2d(x, 3, stride=2, padding=1)
    outs = []
    for stage, num_blocks in enumerate((3, 4, 6, 3)):
        for j in range(num_blocks):
            p = f"layer{stage + 1}.{j}"
            stride = 2 if stage > 0 and j == 0 else 1
            s1, s2 = (1, stride) if style == "pytorch" else (stride, 1)
            out = F.relu(_bn(F.conv2d(x, sd[f"{p}.conv1.weight"], stride=s1), sd, f"{p}.bn1"))
            out = F.relu(_bn(F.conv2d(out, sd[f"{p}.conv2.weight"], stride=s2, padding=1),
                             sd, f"{p}.bn2"))
            out = _bn(F.conv2d(out, sd[f"{p}.conv3.weight"]), sd, f"{p}.bn3")
            if j > 0:
                shortcut = x
            elif avg_down and stride == 2:
                shortcut = _bn(F.conv2d(_avg_pool2_ceil(x), sd[f"{p}.downsample.1.weight"]),
                               sd, f"{p}.downsample.2")
            else:
                shortcut = _bn(F.conv2d(x, sd[f"{p}.downsample.0.weight"], stride=stride),
                               sd, f"{p}.downsample.1")
            x = F.relu(out + shortcut)
        outs.append(x)
    return outs


def _randomise(model, seed=0):
    """Random weights and BN statistics (the default init has zero residual branches)."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, v in model.state_dict().items():
        if not v.is_floating_point():
            sd[k] = v
        elif v.dim() == 4:
            sd[k] = torch.randn(v.shape, generator=g) * math.sqrt(2.0 / v[0].numel())
        elif k.endswith("running_var"):
            sd[k] = torch.rand(v.shape, generator=g) * 1.5 + 0.5
        elif k.endswith("weight"):
            sd[k] = torch.rand(v.shape, generator=g) * 0.8 + 0.2
        else:
            sd[k] = torch.randn(v.shape, generator=g) * 0.1
    model.load_state_dict(sd)
    return sd


@pytest.mark.parametrize("style,deep_stem,avg_down,size", [
    ("pytorch", False, False, (40, 56)),
    ("caffe", False, False, (40, 56)),
    ("pytorch", True, True, (50, 38)),  # odd sizes exercise the ceil-mode average pool
])
def test_resnet50_matches_functional_reference(style, deep_stem, avg_down, size):
    model = ResNet(depth=50, style=style, deep_stem=deep_stem, avg_down=avg_down).eval()
    sd = _randomise(model)
    x = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        outs = model(x)
        refs = _reference_resnet50(sd, x, style, deep_stem, avg_down)
    assert len(outs) == 4
    for out, ref in zip(outs, refs):
        assert out.shape == ref.shape
        torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())


def test_frozen_bn_matches_bn_in_eval_and_loads_bn_state_dict():
    bn_model = ResNet(depth=18).eval()
    sd = _randomise(bn_model)
    frozen = ResNet(depth=18, norm_cfg=dict(type="FrozenBN")).eval()
    assert set(frozen.state_dict()) == {k for k in sd if not k.endswith("num_batches_tracked")}
    frozen.load_state_dict(sd)  # strict: num_batches_tracked is accepted and dropped
    assert isinstance(frozen.bn1, FrozenBatchNorm2d)
    x = torch.randn(1, 3, 48, 48)
    with torch.no_grad():
        for a, b in zip(bn_model(x), frozen(x)):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)
    y = torch.randn(2, 64, 5, 5)
    torch.testing.assert_close(frozen.bn1(y), _bn(y, sd, "bn1"), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- freezing and norm_eval

def _bn_stats(model):
    return {k: v.clone() for k, v in model.state_dict().items() if "running" in k}


def _train_step(model):
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    loss = sum(o.square().mean() for o in model(torch.randn(2, 3, 64, 64)))
    opt.zero_grad()
    loss.backward()
    opt.step()


def test_frozen_stages_and_norm_eval_keep_statistics():
    torch.manual_seed(0)
    model = ResNet(depth=18, frozen_stages=1, norm_eval=True, zero_init_residual=False)
    model.train()
    frozen_prefixes = ("conv1.", "bn1.", "layer1.")
    for name, p in model.named_parameters():
        assert p.requires_grad == (not name.startswith(frozen_prefixes)), name
    for name, m in model.named_modules():
        if name.startswith(("conv1", "bn1", "layer1")) or isinstance(m, torch.nn.BatchNorm2d):
            assert not m.training, name
    assert model.layer2[0].conv1.training  # only norms and frozen stages are switched off

    stats = _bn_stats(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _train_step(model)
    after = model.state_dict()
    for k, v in stats.items():
        assert torch.equal(after[k], v), k
    assert torch.equal(after["layer1.0.conv1.weight"], before["layer1.0.conv1.weight"])
    assert not torch.equal(after["layer4.1.conv2.weight"], before["layer4.1.conv2.weight"])
    assert not torch.equal(after["layer4.1.bn2.weight"], before["layer4.1.bn2.weight"])


def test_norm_eval_false_updates_unfrozen_statistics_only():
    torch.manual_seed(0)
    model = ResNet(depth=18, frozen_stages=1, norm_eval=False).train()
    assert model.layer2[0].bn1.training and not model.layer1[0].bn1.training
    assert not model.bn1.training
    stats = _bn_stats(model)
    _train_step(model)
    after = model.state_dict()
    assert torch.equal(after["bn1.running_mean"], stats["bn1.running_mean"])
    assert torch.equal(after["layer1.0.bn1.running_var"], stats["layer1.0.bn1.running_var"])
    assert not torch.equal(after["layer2.0.bn1.running_mean"], stats["layer2.0.bn1.running_mean"])
    model.eval()
    assert not any(m.training for m in model.modules())


def test_gradient_checkpointing_gives_same_outputs_and_grads():
    plain = ResNet(depth=18, norm_eval=True)
    _randomise(plain)
    cp = ResNet(depth=18, norm_eval=True, with_cp=True)
    cp.load_state_dict(plain.state_dict())
    x = torch.randn(1, 3, 32, 32, requires_grad=True)
    grads = []
    for model in (plain, cp):
        model.train()
        x.grad = None
        sum(o.sum() for o in model(x)).backward()
        grads.append((x.grad.clone(), model.layer3[0].conv1.weight.grad.clone()))
    for a, b in zip(*grads):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


def test_no_freezing_and_deep_stem_freezing():
    assert all(p.requires_grad for p in ResNet(depth=18, frozen_stages=-1).parameters())
    model = ResNet(depth=18, deep_stem=True, frozen_stages=0).train()
    assert not any(p.requires_grad for p in model.stem.parameters())
    assert not model.stem.training
    assert all(p.requires_grad for p in model.layer1.parameters())


# ---------------------------------------------------------------- initialisation

def test_init_kaiming_fan_out_and_zero_residual():
    torch.manual_seed(0)
    model = ResNet(depth=50)
    for block in [*model.layer1, *model.layer3]:
        assert torch.all(block.bn3.weight == 0) and torch.all(block.bn3.bias == 0)
        assert torch.all(block.bn1.weight == 1) and torch.all(block.bn2.bias == 0)
    # layer3.0.conv1: 512 -> 256 1x1; fan_out 256 gives std sqrt(2/256), fan_in would be sqrt(2/512)
    std = model.layer3[0].conv1.weight.std().item()
    assert abs(std - math.sqrt(2 / 256)) < 0.03 * math.sqrt(2 / 256)
    basic = ResNet(depth=18)
    assert torch.all(basic.layer2[1].bn2.weight == 0) and torch.all(basic.layer2[1].bn1.weight == 1)
    no_zero = ResNet(depth=50, zero_init_residual=False)
    assert torch.all(no_zero.layer1[0].bn3.weight == 1)


# ---------------------------------------------------------------- pretrained loading

def test_pretrained_checkpoint_loaded_by_init_weights(tmp_path):
    source = ResNet(depth=18)
    sd = _randomise(source, seed=3)
    path = tmp_path / "detector.pth"
    torch.save({"meta": {}, "state_dict": {**{f"backbone.{k}": v for k, v in sd.items()},
                                           "neck.x.weight": torch.zeros(1)}}, path)
    model = ResNet(depth=18, frozen_stages=1,
                   init_cfg=dict(type="Pretrained", checkpoint=str(path), prefix="backbone."))
    assert not torch.equal(model.conv1.weight, sd["conv1.weight"])  # constructor: random init
    model.init_weights()
    for k, v in model.state_dict().items():
        assert torch.equal(v, sd[k]), k
    assert not model.conv1.weight.requires_grad

    tv_path = tmp_path / "resnet18_torchvision.pth"  # plain dict with the classifier keys
    torch.save({**sd, "fc.weight": torch.zeros(1000, 512), "fc.bias": torch.zeros(1000)}, tv_path)
    tv_model = ResNet(depth=18, pretrained=str(tv_path))
    tv_model.init_weights()
    assert torch.equal(tv_model.layer4[1].bn2.running_var, sd["layer4.1.bn2.running_var"])


def test_pretrained_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        ResNet(depth=18, pretrained=str(tmp_path / "missing.pth")).init_weights()
    path = tmp_path / "r50.pth"
    torch.save(ResNet(depth=50).state_dict(), path)
    with pytest.raises(CheckpointError, match="layer1.0.conv1.weight has shape"):
        ResNet(depth=18, pretrained=str(path)).init_weights()


@pytest.mark.parametrize("kwargs", [
    dict(depth=42), dict(depth=50, style="tensorflow"), dict(depth=50, out_indices=(4,)),
    dict(depth=50, strides=(1, 2, 2)), dict(depth=50, frozen_stages=5),
    dict(depth=50, norm_cfg=dict(type="XN")), dict(depth=50, init_cfg=dict(type="Kaiming")),
])
def test_bad_arguments_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        ResNet(**kwargs)
