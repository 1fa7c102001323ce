"""Deformable convolution (v1, v2) against hand-worked cases, F.conv2d and a brute-force loop.

The brute-force reference walks every output pixel, kernel tap and input channel in float64,
reading the offset of tap k of deform group g from channels ``g*2K + 2k`` (dy) and ``+1`` (dx)
and the mask from ``g*K + k`` (mmcv's layout), and samples the input with the tent-function form
of bilinear interpolation: ``sum_{i,j in image} max(0, 1-|y-i|) * max(0, 1-|x-j|) * x[i, j]``.
"""
import math

import pytest
import torch
import torch.nn.functional as F

from detzoo.ops import (DeformConv2d, DeformConv2dPack, ModulatedDeformConv2d,
                        ModulatedDeformConv2dPack, deform_conv2d, modulated_deform_conv2d)


def _sample(img, y, x):
    """Bilinear value of img [H, W] at (y, x), zero outside (tent-function form)."""
    h, w = img.shape
    total = 0.0
    for i in range(math.floor(y), math.floor(y) + 2):
        for j in range(math.floor(x), math.floor(x) + 2):
            if 0 <= i < h and 0 <= j < w:
                total += max(0.0, 1 - abs(y - i)) * max(0.0, 1 - abs(x - j)) * float(img[i, j])
    return total


def _brute_force(x, offset, mask, weight, bias, stride, padding, dilation, groups, dg):
    n, c, h, w = x.shape
    o, cpg, kh, kw = weight.shape
    k_taps = kh * kw
    ho, wo = offset.shape[2:]
    out = torch.zeros(n, o, ho, wo, dtype=torch.float64)
    c_per_dg = c // dg
    o_per_group = o // groups
    for b in range(n):
        for oy in range(ho):
            for ox in range(wo):
                # sampled value of every input channel at every tap
                samples = torch.zeros(c, kh, kw, dtype=torch.float64)
                for ch in range(c):
                    g = ch // c_per_dg
                    for ki in range(kh):
                        for kj in range(kw):
                            k = ki * kw + kj
                            dy = float(offset[b, g * 2 * k_taps + 2 * k, oy, ox])
                            dx = float(offset[b, g * 2 * k_taps + 2 * k + 1, oy, ox])
                            y = oy * stride[0] - padding[0] + ki * dilation[0] + dy
                            xx = ox * stride[1] - padding[1] + kj * dilation[1] + dx
                            m = 1.0 if mask is None else float(mask[b, g * k_taps + k, oy, ox])
                            samples[ch, ki, kj] = m * _sample(x[b, ch], y, xx)
                for oc in range(o):
                    grp = oc // o_per_group
                    chans = samples[grp * cpg:(grp + 1) * cpg]
                    out[b, oc, oy, ox] = (chans * weight[oc].double()).sum()
                    if bias is not None:
                        out[b, oc, oy, ox] += float(bias[oc])
    return out


def _out_size(size, pad, dil, k, stride):
    return (size + 2 * pad - dil * (k - 1) - 1) // stride + 1


# ---------------------------------------------------------------- hand-worked and F.conv2d

def test_zero_offsets_half_mask_is_half_a_convolution():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 6, 9, 11, generator=g)
    weight = torch.randn(4, 3, 3, 3, generator=g)
    bias = torch.randn(4, generator=g)
    kwargs = dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)
    ref = F.conv2d(x, weight, **kwargs)
    ho, wo = ref.shape[2:]
    offset = torch.zeros(2, 2 * 2 * 9, ho, wo)
    mask = torch.full((2, 2 * 9, ho, wo), 0.5)
    out = modulated_deform_conv2d(x, offset, mask, weight, bias, deform_groups=2, **kwargs)
    torch.testing.assert_close(out, 0.5 * ref + bias[None, :, None, None], rtol=1e-5, atol=1e-5)
    # v1 (no mask, no bias) with zero offsets is exactly a convolution
    out_v1 = deform_conv2d(x, offset, weight, deform_groups=2, **kwargs)
    torch.testing.assert_close(out_v1, ref, rtol=1e-5, atol=1e-5)


def test_offset_channel_order_is_dy_then_dx():
    # 1x1 kernel, one deform group: channel 0 is dy, channel 1 is dx (mmcv's [y0, x0, ...]).
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    weight = torch.ones(1, 1, 1, 1)
    shift_x = torch.zeros(1, 2, 3, 4)
    shift_x[:, 1] = 1.0
    expected_x = torch.tensor([[1.0, 2, 3, 0], [5, 6, 7, 0], [9, 10, 11, 0]])
    torch.testing.assert_close(deform_conv2d(x, shift_x, weight)[0, 0], expected_x)
    shift_y = torch.zeros(1, 2, 3, 4)
    shift_y[:, 0] = -0.5  # half a row up: mean of the row above (zero above the image)
    expected_y = torch.tensor([[0.0, 0.5, 1, 1.5], [2, 3, 4, 5], [6, 7, 8, 9]])
    torch.testing.assert_close(deform_conv2d(x, shift_y, weight)[0, 0], expected_y)


def test_samples_beyond_one_pixel_outside_are_zero():
    x = torch.ones(1, 1, 2, 2)
    weight = torch.ones(1, 1, 1, 1)
    offset = torch.zeros(1, 2, 2, 2)
    offset[:, 0] = -1.0  # row -1 for the first output row: fully outside
    offset[:, 1] = 0.25
    out = deform_conv2d(x, offset, weight)[0, 0]
    # first row samples row -1 (0); second row samples row 0 at x+0.25: 1 then 0.75
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.0], [1.0, 0.75]]))


# ---------------------------------------------------------------- brute force

@pytest.mark.parametrize("stride,padding,dilation,groups,dg,with_mask", [
    ((1, 1), (1, 1), (1, 1), 1, 1, True),
    ((2, 1), (1, 0), (1, 2), 2, 2, True),
    ((1, 2), (2, 1), (2, 1), 1, 2, False),
])
def test_random_offsets_match_brute_force(stride, padding, dilation, groups, dg, with_mask):
    g = torch.Generator().manual_seed(3)
    n, c, h, w, o, kh, kw = 2, 4, 5, 6, 4, 3, 2
    x = torch.randn(n, c, h, w, generator=g, dtype=torch.float64)
    weight = torch.randn(o, c // groups, kh, kw, generator=g, dtype=torch.float64)
    bias = torch.randn(o, generator=g, dtype=torch.float64) if with_mask else None
    ho = _out_size(h, padding[0], dilation[0], kh, stride[0])
    wo = _out_size(w, padding[1], dilation[1], kw, stride[1])
    # offsets up to +-2.5 px: many samples straddle or leave the border
    offset = (torch.rand(n, dg * 2 * kh * kw, ho, wo, generator=g, dtype=torch.float64) - 0.5) * 5
    mask = (torch.rand(n, dg * kh * kw, ho, wo, generator=g, dtype=torch.float64)
            if with_mask else None)
    out = modulated_deform_conv2d(x, offset, mask, weight, bias, stride, padding, dilation,
                                  groups, dg)
    ref = _brute_force(x, offset, mask, weight, bias, stride, padding, dilation, groups, dg)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)


def test_float32_matches_float64():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(1, 8, 12, 12, generator=g)
    weight = torch.randn(8, 8, 3, 3, generator=g)
    offset = torch.randn(1, 18, 12, 12, generator=g) * 3
    mask = torch.rand(1, 9, 12, 12, generator=g)
    out = modulated_deform_conv2d(x, offset, mask, weight, None, 1, 1)
    ref = modulated_deform_conv2d(x.double(), offset.double(), mask.double(), weight.double(),
                                  None, 1, 1)
    torch.testing.assert_close(out.double(), ref, rtol=1e-4, atol=1e-4)


def test_gradcheck_all_inputs():
    g = torch.Generator().manual_seed(7)
    x = torch.randn(1, 2, 4, 4, generator=g, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(2, 1, 2, 2, generator=g, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(2, generator=g, dtype=torch.float64, requires_grad=True)
    ho = wo = _out_size(4, 0, 1, 2, 1)
    # keep sample coordinates away from integers, where bilinear is not differentiable
    offset = (torch.rand(1, 16, ho, wo, generator=g, dtype=torch.float64) * 0.6 + 0.2)
    offset = (offset * torch.where(torch.rand(offset.shape, generator=g) > 0.5, 1, -1)
              ).requires_grad_()
    mask = torch.rand(1, 8, ho, wo, generator=g, dtype=torch.float64).requires_grad_()

    def fn(x, offset, mask, weight, bias):
        return modulated_deform_conv2d(x, offset, mask, weight, bias, 1, 0, 1, 2, 2)

    assert torch.autograd.gradcheck(fn, (x, offset, mask, weight, bias), eps=1e-6, atol=1e-6,
                                    fast_mode=True)


def test_shape_errors_are_value_errors():
    x = torch.randn(1, 4, 5, 5)
    weight = torch.randn(4, 4, 3, 3)
    with pytest.raises(ValueError, match="offset must have shape"):
        deform_conv2d(x, torch.zeros(1, 9, 5, 5), weight, padding=1)
    with pytest.raises(ValueError, match="mask must have shape"):
        modulated_deform_conv2d(x, torch.zeros(1, 18, 5, 5), torch.zeros(1, 3, 5, 5), weight,
                                padding=1)
    with pytest.raises(ValueError, match="deform_groups=3"):
        deform_conv2d(x, torch.zeros(1, 54, 5, 5), weight, padding=1, deform_groups=3)


# ---------------------------------------------------------------- modules (mmcv key layout)

def test_modulated_pack_keys_init_and_output_split():
    torch.manual_seed(0)
    pack = ModulatedDeformConv2dPack(8, 6, 3, stride=2, padding=1, deform_groups=2, bias=True)
    shapes = {k: tuple(v.shape) for k, v in pack.state_dict().items()}
    assert shapes == {"weight": (6, 8, 3, 3), "bias": (6,),
                      "conv_offset.weight": (2 * 27, 8, 3, 3), "conv_offset.bias": (54,)}
    assert pack.conv_offset.stride == (2, 2) and pack.conv_offset.padding == (1, 1)
    assert not pack.conv_offset.weight.any() and not pack.conv_offset.bias.any()
    bound = 1 / math.sqrt(8 * 9)  # mmcv: uniform(-1/sqrt(C*kh*kw), +)
    assert pack.weight.abs().max() <= bound and pack.weight.abs().max() > 0.8 * bound
    x = torch.randn(2, 8, 9, 9)
    with torch.no_grad():
        torch.testing.assert_close(pack(x), 0.5 * F.conv2d(x, pack.weight, stride=2, padding=1)
                                   + pack.bias[None, :, None, None], rtol=1e-5, atol=1e-5)
        # constant conv_offset output: first 2/3 offsets, last 1/3 mask logits
        values = torch.randn(54) * 0.7
        pack.conv_offset.bias.copy_(values)
        ho = 5
        offset = values[:36, None, None].expand(2, 36, ho, ho)
        mask = torch.sigmoid(values[36:])[:, None, None].expand(2, 18, ho, ho)
        expected = modulated_deform_conv2d(x, offset, mask, pack.weight, pack.bias, 2, 1, 1, 1, 2)
        torch.testing.assert_close(pack(x), expected)


def test_v1_pack_keys_and_identity_at_init():
    pack = DeformConv2dPack(4, 4, 3, padding=2, dilation=2, groups=2)
    assert {k: tuple(v.shape) for k, v in pack.state_dict().items()} == {
        "weight": (4, 2, 3, 3), "conv_offset.weight": (18, 4, 3, 3), "conv_offset.bias": (18,)}
    x = torch.randn(1, 4, 7, 7)
    with torch.no_grad():
        torch.testing.assert_close(pack(x), F.conv2d(x, pack.weight, padding=2, dilation=2,
                                                     groups=2), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="no bias"):
        DeformConv2d(4, 4, 3, bias=True)


def test_plain_layers_take_external_offsets():
    layer = ModulatedDeformConv2d(2, 3, 3, padding=1)
    assert set(layer.state_dict()) == {"weight", "bias"}
    x = torch.randn(1, 2, 4, 4)
    offset, mask = torch.zeros(1, 18, 4, 4), torch.ones(1, 9, 4, 4)
    torch.testing.assert_close(layer(x, offset, mask),
                               F.conv2d(x, layer.weight, layer.bias, padding=1))
    v1 = DeformConv2d(2, 3, 3, padding=1)
    torch.testing.assert_close(v1(x, offset), F.conv2d(x, v1.weight, padding=1))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    g = torch.Generator().manual_seed(11)
    x = torch.randn(2, 8, 10, 10, generator=g)
    weight = torch.randn(8, 4, 3, 3, generator=g)
    offset = torch.randn(2, 36, 10, 10, generator=g) * 2
    mask = torch.rand(2, 18, 10, 10, generator=g)
    args = (None, 1, 1, 1, 2, 2)
    cpu = modulated_deform_conv2d(x, offset, mask, weight, *args)
    gpu = modulated_deform_conv2d(x.cuda(), offset.cuda(), mask.cuda(), weight.cuda(), *args)
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-4, atol=1e-4)
