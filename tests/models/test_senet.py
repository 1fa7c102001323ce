"""SENet-154-vd (detzoo.models.backbones.senet) against Paddle's definition and brute force."""
import math

import pytest
import torch

from detzoo.errors import ConfigError
from detzoo.models.backbones import SELayer, SENet


def paddle_senet154_vd_parameter_count():
    """Parameters of PaddleClas' SENet154_vd without its classifier, from its definition
    (se_resnext_vd.py, cardinality 64): vd stem 3x3 convs 3-64-64-128 with BN; per block 1x1
    in->nf, 3x3 nf->nf in 64 groups, 1x1 nf->nf, each + BN (scale, offset); SE fc nf->nf/16->nf
    with biases; first block of a stage: 1x1 projection in->nf + BN. nf = 256/512/1024/2048."""
    conv = lambda cin, cout, k, g=1: cin // g * cout * k * k  # noqa: E731
    bn = lambda c: 2 * c  # noqa: E731
    total = conv(3, 64, 3) + bn(64) + conv(64, 64, 3) + bn(64) + conv(64, 128, 3) + bn(128)
    stats = 2 * (64 + 64 + 128)  # BN mean + variance, which Paddle's count includes
    cin = 128
    for nf, blocks in zip((256, 512, 1024, 2048), (3, 8, 36, 3)):
        for i in range(blocks):
            total += conv(cin, nf, 1) + conv(nf, nf, 3, 64) + conv(nf, nf, 1) + 3 * bn(nf)
            total += nf * (nf // 16) + nf // 16 + (nf // 16) * nf + nf
            stats += 2 * 3 * nf
            if i == 0:
                total += conv(cin, nf, 1) + bn(nf)
                stats += 2 * nf
            cin = nf
    return total, stats


def test_senet154_vd_parameter_count_matches_paddle():
    net = SENet()
    params = sum(p.numel() for p in net.parameters())
    stats = sum(b.numel() for name, b in net.named_buffers() if name.endswith(("running_mean", "running_var")))
    assert (params, stats) == paddle_senet154_vd_parameter_count()
    # PaddleClas' model list: SENet154_vd 122.03 M parameters, counting its 2048 -> 1000 fc
    assert round((params + stats + 2048 * 1000 + 1000) / 1e6, 2) == 122.03
    assert net.out_channels == [256, 512, 1024, 2048]
    conv2 = net.layer3[0].conv2
    assert (conv2.groups, conv2.in_channels, conv2.out_channels, conv2.stride) == (64, 1024, 1024, (2, 2))


def test_se_layer_against_brute_force():
    torch.manual_seed(0)
    se = SELayer(8, ratio=4)
    x = torch.randn(2, 8, 3, 2)
    w1, b1, w2, b2 = (p.detach() for p in (se.squeeze.weight, se.squeeze.bias, se.excitation.weight, se.excitation.bias))
    expected = torch.empty_like(x)
    for n in range(2):
        pooled = [sum(float(x[n, c, i, j]) for i in range(3) for j in range(2)) / 6 for c in range(8)]
        hidden = [max(0.0, sum(float(w1[h, c]) * pooled[c] for c in range(8)) + float(b1[h])) for h in range(2)]
        for c in range(8):
            z = sum(float(w2[c, h]) * hidden[h] for h in range(2)) + float(b2[c])
            expected[n, c] = x[n, c] / (1 + math.exp(-z))
    with torch.no_grad():
        torch.testing.assert_close(se(x), expected, rtol=1e-5, atol=1e-6)


def _avg_pool_ceil_exclusive(x):
    """2x2 stride-2 average pool, ceil mode, partial windows averaged over their valid pixels."""
    n, c, h, w = x.shape
    out = torch.empty(n, c, (h + 1) // 2, (w + 1) // 2)
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            out[:, :, i, j] = x[:, :, 2 * i:2 * i + 2, 2 * j:2 * j + 2].mean(dim=(2, 3))
    return out


def test_strided_block_is_se_bottleneck_with_avg_pool_shortcut():
    torch.manual_seed(1)
    net = SENet(depth=50, groups=4, base_width=4, base_channels=8, stem_channels=16).eval()
    for m in net.modules():  # non-trivial statistics and affine terms
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    block = net.layer2[0]
    x = torch.randn(1, 32, 5, 5)  # odd size: the ceil-mode pool has partial windows
    relu = torch.relu
    with torch.no_grad():
        out = relu(block.bn1(block.conv1(x)))
        out = relu(block.bn2(block.conv2(out)))
        out = block.bn3(block.conv3(out))
        gate = torch.sigmoid(block.se.excitation(relu(block.se.squeeze(out.mean((2, 3))))))
        shortcut = block.downsample[2](block.downsample[1](_avg_pool_ceil_exclusive(x)))
        expected = relu(out * gate[:, :, None, None] + shortcut)
        torch.testing.assert_close(block(x), expected, rtol=1e-5, atol=1e-5)
    assert block.conv2.stride == (2, 2) and block.downsample[1].stride == (1, 1)
    feats = net(torch.randn(1, 3, 64, 64))
    assert [tuple(f.shape[1:]) for f in feats] == [(32, 16, 16), (64, 8, 8), (128, 4, 4), (256, 2, 2)]


def test_bad_se_ratio_is_a_config_error():
    with pytest.raises(ConfigError, match="se_ratio"):
        SENet(depth=50, se_ratio=0)


def test_se154_rcnn_configs_build_with_frozen_norms():
    from detzoo.config import load_config
    from detzoo.models.layers.norm import FrozenBatchNorm2d

    cfg = load_config("configs/mask_rcnn/mask_rcnn_se154_vd_fpn_s1x.py")
    backbone = cfg["model"]["backbone"]
    assert backbone["type"] is SENet and backbone["norm_cfg"]["type"] == "FrozenBN"
    assert backbone["norm_cfg"]["eps"] == 0.0 and backbone["frozen_stages"] == 1
    small = dict(backbone, depth=50, groups=4, base_channels=8, stem_channels=16)
    net = small.pop("type")(**small)
    assert isinstance(net.layer1[0].bn1, FrozenBatchNorm2d)
