"""MobileNet-V1 (PaddleDetection's): parameter counts against the MobileNet paper, output strides
and channels for YOLOv3 / SSD, a depthwise-separable block against a per-channel reference,
Paddle parameter names, freezing.
"""
import pytest
import torch
import torch.nn.functional as F

from detzoo.errors import ConfigError
from detzoo.models.backbones.mobilenet_v1 import DepthwiseSeparable, MobileNetV1, paddle_static_name

# MobileNet paper (Howard et al. 2017) Table 1: stem conv 3x3x3x32 / s2, then 13 (depthwise
# 3x3, pointwise 1x1) pairs with these (input, output) channels
PAPER_BLOCKS = [(32, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 512)] + \
    [(512, 512)] * 5 + [(512, 1024), (1024, 1024)]


def _hand_count(alpha):
    """Weights of Table 1 at width ``alpha`` plus a BN scale and shift per conv output channel."""
    c = lambda n: int(n * alpha)  # noqa: E731
    total = 3 * 3 * 3 * c(32) + 2 * c(32)
    for cin, cout in PAPER_BLOCKS:
        total += 9 * c(cin) + 2 * c(cin)  # depthwise 3x3 + BN
        total += c(cin) * c(cout) + 2 * c(cout)  # pointwise 1x1 + BN
    return total


@pytest.mark.parametrize("alpha,published_millions", [(1.0, 4.2), (0.75, 2.6), (0.5, 1.3), (0.25, 0.5)])
def test_parameter_count_matches_the_paper(alpha, published_millions):
    model = MobileNetV1(scale=alpha)
    ours = sum(p.numel() for p in model.parameters())
    assert ours == _hand_count(alpha)
    # the paper's ImageNet model (Table 6) adds a 1000-way fully connected classifier
    classifier = int(1024 * alpha) * 1000 + 1000
    assert round((ours + classifier) / 1e6, 1) == published_millions
    if alpha == 1.0:
        assert ours == 3_206_976


def _shapes(model, size):
    with torch.device("meta"):
        return [(o.shape[1], o.shape[2], o.shape[3]) for o in model.eval()(torch.zeros(1, 3, size, size))]


def test_outputs_for_yolov3_and_ssd():
    with torch.device("meta"):
        yolo, ssd = MobileNetV1(), MobileNetV1(with_extra_blocks=True)
    # Paddle feature_maps [4, 6, 13]: conv3_2, conv4_2, conv6 at strides 8, 16, 32
    assert _shapes(yolo, 320) == [(256, 40, 40), (512, 20, 20), (1024, 10, 10)]
    assert yolo.out_channels == [256, 512, 1024]
    # SSD300: conv5_5 (stride 16), conv6 (32), four extra blocks (64, 128, 256, 512)
    assert _shapes(ssd, 300) == [(512, 19, 19), (1024, 10, 10), (512, 5, 5), (256, 3, 3),
                                 (256, 2, 2), (128, 1, 1)]
    assert ssd.out_channels == [512, 1024, 512, 256, 256, 128]
    with torch.device("meta"):
        last_of_each_stride = MobileNetV1(out_indices=(5, 11, 13))
    assert _shapes(last_of_each_stride, 64) == [(256, 8, 8), (512, 4, 4), (1024, 2, 2)]


def test_depthwise_separable_block_by_hand():
    g = torch.Generator().manual_seed(0)
    block = DepthwiseSeparable(3, 5, stride=2).eval()
    with torch.no_grad():
        for bn in (block.dw.bn, block.sep.bn):
            for t in (bn.weight, bn.bias, bn.running_mean):
                t.copy_(torch.randn(t.shape, generator=g))
            bn.running_var.copy_(torch.rand(bn.running_var.shape, generator=g) + 0.5)
    x = torch.randn(2, 3, 9, 7, generator=g)

    def bn_relu(y, bn):
        scale = bn.weight / torch.sqrt(bn.running_var + 1e-5)
        return torch.relu((y - bn.running_mean[None, :, None, None]) * scale[None, :, None, None]
                          + bn.bias[None, :, None, None])

    # depthwise: each channel convolved alone with its own 3x3 kernel
    dw = torch.cat([F.conv2d(x[:, c:c + 1], block.dw.conv.weight[c:c + 1], stride=2, padding=1)
                    for c in range(3)], dim=1)
    hidden = bn_relu(dw, block.dw.bn)
    pw = torch.einsum("oc,nchw->nohw", block.sep.conv.weight[:, :, 0, 0], hidden)
    with torch.no_grad():
        assert torch.allclose(block(x), bn_relu(pw, block.sep.bn), atol=1e-5)
    assert block.dw.conv.bias is None and block.dw.conv.weight.shape == (3, 1, 3, 3)


def test_paddle_parameter_names():
    model = MobileNetV1(with_extra_blocks=True)
    names = {k: paddle_static_name(k) for k in model.state_dict() if not k.endswith("num_batches_tracked")}
    # names as ppdet/modeling/backbones/mobilenet.py (static) creates them
    assert names["conv1.conv.weight"] == "conv1_weights"
    assert names["conv1.bn.weight"] == "conv1_bn_scale"
    assert names["conv2_1.dw.conv.weight"] == "conv2_1_dw_weights"
    assert names["conv5_3.sep.bn.running_mean"] == "conv5_3_sep_bn_mean"
    assert names["conv6.sep.bn.bias"] == "conv6_sep_bn_offset"
    assert names["conv7_4.extra2.bn.running_var"] == "conv7_4_extra2_bn_variance"
    assert names["conv7_1.extra1.conv.weight"] == "conv7_1_extra1_weights"
    # 1 stem + 26 block + 8 extra convs, each a weight and 4 BN tensors; all names distinct
    assert len(names) == len(set(names.values())) == 35 * 5
    with pytest.raises(ValueError):
        paddle_static_name("conv1.bn.num_batches_tracked")


def test_freezing_and_norm_eval():
    model = MobileNetV1(frozen_stages=2, norm_eval=False).train()
    frozen = [p.requires_grad for n, p in model.named_parameters() if n.startswith(("conv1.", "conv2_"))]
    assert frozen and not any(frozen)
    assert all(p.requires_grad for n, p in model.named_parameters() if n.startswith("conv3_1."))
    assert not model.conv2_2.dw.bn.training and model.conv3_1.dw.bn.training
    model = MobileNetV1(norm_eval=True).train()
    assert not any(m.training for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_bad_arguments_are_config_errors():
    with pytest.raises(ConfigError, match="out_indices"):
        MobileNetV1(out_indices=(4, 14))  # 14 needs the extra blocks
    with pytest.raises(ConfigError, match="extra_block_filters"):
        MobileNetV1(with_extra_blocks=True, extra_block_filters=((256,),))
