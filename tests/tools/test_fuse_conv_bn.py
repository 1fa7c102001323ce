"""fuse_conv_bn: each fold against a brute-force conv-then-normalise written here, the pairs it
picks against the real data flow of whole detectors (forward hooks), and Faster R-CNN R50-FPN
detections before/after folding."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from detzoo.config import load_config
from detzoo.models.builder import build_detector
from detzoo.models.layers import ConvModule, FrozenBatchNorm2d
from detzoo.models.layers.conv_ws import ConvWS2d
from detzoo.models.layers.fuse_conv_bn import find_conv_bn_pairs, fuse_conv_bn
from detzoo.ops.deform_conv import ModulatedDeformConv2dPack


def randomize_norms(model, seed=0):
    """Non-trivial running statistics and affine terms for every batch norm."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.modules.batchnorm._BatchNorm, FrozenBatchNorm2d)):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=gen) * 0.5)
                m.running_var.copy_(torch.rand(n, generator=gen) * 2 + 0.3)
                if m.weight is not None:
                    m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                    m.bias.copy_(torch.randn(n, generator=gen) * 0.2)
    return model


def brute_conv_norm(x, conv, norm):
    """bn(conv(x)) in float64 with the norm written out channel by channel."""
    x = x.double()
    y = F.conv2d(x, conv.weight.double(), None if conv.bias is None else conv.bias.double(),
                 conv.stride, conv.padding, conv.dilation, conv.groups)
    out = torch.empty_like(y)
    for c in range(y.shape[1]):
        mean, var = float(norm.running_mean[c]), float(norm.running_var[c])
        w = 1.0 if norm.weight is None else float(norm.weight[c].detach())
        b = 0.0 if norm.bias is None else float(norm.bias[c].detach())
        out[:, c] = (y[:, c] - mean) / np.sqrt(var + norm.eps) * w + b
    return out


@pytest.mark.parametrize("groups,bias,norm_kind", [
    (1, False, "bn"), (1, True, "bn"), (4, False, "bn"), (1, False, "frozen"), (2, True, "noaffine")])
def test_single_fold_matches_brute_force(groups, bias, norm_kind):
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 12, 3, stride=2, padding=1, groups=groups, bias=bias)
    norm = {"bn": nn.BatchNorm2d(12, eps=1e-3), "frozen": FrozenBatchNorm2d(12),
            "noaffine": nn.BatchNorm2d(12, affine=False)}[norm_kind]
    block = randomize_norms(nn.Sequential(conv, norm)).eval()
    x = torch.randn(2, 8, 9, 11)
    expected = brute_conv_norm(x, conv, norm)
    fuse_conv_bn(block)
    assert isinstance(block[1], nn.Identity)
    assert block[0].bias is not None
    torch.testing.assert_close(block(x).double(), expected, rtol=1e-5, atol=1e-5)


def test_conv_module_and_modulated_deform_conv():
    torch.manual_seed(0)
    cm = randomize_norms(ConvModule(4, 6, 3, padding=1, norm_cfg=dict(type="BN"))).eval()
    x = torch.randn(1, 4, 7, 7)
    expected = torch.relu(brute_conv_norm(x, cm.conv, cm.bn))
    fuse_conv_bn(cm)
    assert isinstance(cm.bn, nn.Identity) and isinstance(cm.norm, nn.Identity)
    torch.testing.assert_close(cm(x).double(), expected, rtol=1e-5, atol=1e-5)

    dcn = ConvModule(4, 6, 3, padding=1, conv_cfg=dict(type="DCNv2"), norm_cfg=dict(type="BN"))
    with torch.no_grad():  # non-zero offsets so the deformable path is really exercised
        dcn.conv.conv_offset.weight.normal_(0, 0.1)
    randomize_norms(dcn).eval()
    before = dcn(x)
    fuse_conv_bn(dcn)
    assert isinstance(dcn.bn, nn.Identity)
    torch.testing.assert_close(dcn(x), before, rtol=1e-4, atol=1e-4)


def test_unsafe_pairs_are_left_alone():
    cases = {
        "training-mode BN": nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)),
        "ReLU in between": nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU(), nn.BatchNorm2d(4)),
        "weight-standardised conv": nn.Sequential(ConvWS2d(3, 4, 1), nn.BatchNorm2d(4)),
        "norm before conv": ConvModule(4, 4, 1, norm_cfg=dict(type="BN"),
                                       order=("norm", "conv", "act")),
    }
    for what, module in cases.items():
        if what != "training-mode BN":
            module.eval()
        assert find_conv_bn_pairs(module) == [], what
        fuse_conv_bn(module)
        assert any(isinstance(m, nn.BatchNorm2d) for m in module.modules()), what


def dataflow_pairs(model, img, metas):
    """(conv, norm) names where the norm's input tensor IS the conv's output, seen in a forward."""
    modules = dict(model.named_modules())
    outputs, inputs, handles = {}, {}, []
    for name, m in modules.items():
        if isinstance(m, (nn.Conv2d, ModulatedDeformConv2dPack)):
            handles.append(m.register_forward_hook(
                lambda mod, args, out, name=name: outputs.setdefault(name, []).append(id(out))))
        if isinstance(m, (nn.modules.batchnorm._BatchNorm, FrozenBatchNorm2d)):
            handles.append(m.register_forward_hook(
                lambda mod, args, out, name=name: inputs.setdefault(name, []).append(id(args[0]))))
    keep = []  # keep outputs alive so ids are not reused during the forward
    handles.append(torch.nn.modules.module.register_module_forward_hook(
        lambda mod, args, out: keep.append(out)))
    try:
        with torch.no_grad():
            model.predict(img, metas, rescale=False)
    finally:
        for h in handles:
            h.remove()
    return {(c, n) for c, ids in outputs.items() for n, nids in inputs.items()
            if set(ids) & set(nids)}


def _metas(h, w):
    return [dict(filename="x.jpg", img_id=0, ori_shape=(h, w, 3), img_shape=(h, w, 3),
                 pad_shape=(h, w, 3), scale_factor=np.ones(4, np.float32), flip=False,
                 flip_direction=None)]


@pytest.mark.parametrize("config", ["faster_rcnn_r50_fpn_1x_coco", "yolov3_d53_320_273e_coco"])
def test_pairs_follow_the_real_data_flow(config):
    torch.manual_seed(0)
    model = build_detector(load_config(config)["model"]).eval()
    img = torch.randn(1, 3, 128, 128)
    pairs = set(find_conv_bn_pairs(model))
    flow = dataflow_pairs(model, img, _metas(128, 128))
    assert pairs <= flow  # never folds a norm that does not read that conv's output
    num_norms = sum(isinstance(m, (nn.modules.batchnorm._BatchNorm, FrozenBatchNorm2d))
                    for m in model.modules())
    assert len(pairs) == num_norms > 0  # and, in these models, folds all of them


def test_faster_rcnn_detections_unchanged():
    torch.manual_seed(0)
    cfg = load_config("faster_rcnn_r50_fpn_1x_coco")["model"]
    model = randomize_norms(build_detector(cfg)).eval()
    # random heads score every proposal about equally; lower the threshold so detections exist
    model.roi_head.test_cfg["score_thr"] = 0.0
    # float64 so that "float noise" is ~1e-12 and no near-tie in NMS can flip
    model.double()
    img = torch.randn(1, 3, 256, 320, dtype=torch.float64)
    metas = _metas(256, 320)
    with torch.no_grad():
        before = model.predict(img, metas, rescale=True)[0]
        fuse_conv_bn(model)
        after = model.predict(img, metas, rescale=True)[0]
    assert not any(isinstance(m, (nn.BatchNorm2d, FrozenBatchNorm2d)) for m in model.modules())
    assert len(before) > 0
    assert len(after) == len(before)
    assert torch.equal(after.labels, before.labels)
    torch.testing.assert_close(after.boxes, before.boxes, rtol=1e-9, atol=1e-7)
    torch.testing.assert_close(after.scores, before.scores, rtol=1e-9, atol=1e-9)
