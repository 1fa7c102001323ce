"""detzoo.ops.roi_align against a literal plain-Python port of the RoIAlign kernel (float64)."""
import math

from importlib import import_module

import pytest
import torch

from detzoo.ops.roi_align import RoIAlign, roi_align

# detzoo.ops re-exports a function under the module's name, so fetch the module itself.
roi_align_module = import_module("detzoo.ops.roi_align")


def _bilinear(plane, y, x, height, width):
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return 0.0
    y, x = max(y, 0.0), max(x, 0.0)
    y_low, x_low = int(y), int(x)
    if y_low >= height - 1:
        y_high = y_low = height - 1
        y = float(y_low)
    else:
        y_high = y_low + 1
    if x_low >= width - 1:
        x_high = x_low = width - 1
        x = float(x_low)
    else:
        x_high = x_low + 1
    ly, lx = y - y_low, x - x_low
    hy, hx = 1.0 - ly, 1.0 - lx
    return (hy * hx * plane[y_low][x_low] + hy * lx * plane[y_low][x_high]
            + ly * hx * plane[y_high][x_low] + ly * lx * plane[y_high][x_high])


def _ref_roi_align(features, rois, out_h, out_w, scale, sampling_ratio, aligned):
    _, channels, height, width = features.shape
    planes = features.double().tolist()
    out = torch.zeros(len(rois), channels, out_h, out_w, dtype=torch.float64)
    offset = 0.5 if aligned else 0.0
    for k, (b, x1, y1, x2, y2) in enumerate(rois.double().tolist()):
        sx, sy = x1 * scale - offset, y1 * scale - offset
        roi_w, roi_h = x2 * scale - offset - sx, y2 * scale - offset - sy
        if not aligned:
            roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
        bin_h, bin_w = roi_h / out_h, roi_w / out_w
        gh = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_h / out_h)
        gw = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_w / out_w)
        count = max(gh * gw, 1)
        for c in range(channels):
            plane = planes[int(b)][c]
            for ph in range(out_h):
                for pw in range(out_w):
                    total = 0.0
                    for iy in range(gh):
                        y = sy + ph * bin_h + (iy + 0.5) * bin_h / gh
                        for ix in range(gw):
                            x = sx + pw * bin_w + (ix + 0.5) * bin_w / gw
                            total += _bilinear(plane, y, x, height, width)
                    out[k, c, ph, pw] = total / count
    return out


def _random_rois(n, generator, num_images, extent, max_size):
    xy = torch.rand(n, 2, generator=generator, dtype=torch.float64) * extent - 0.15 * extent
    wh = torch.rand(n, 2, generator=generator, dtype=torch.float64) * max_size
    batch = torch.randint(0, num_images, (n, 1), generator=generator).double()
    return torch.cat([batch, xy, xy + wh], dim=1)


@pytest.mark.parametrize("sampling_ratio", [0, 2])
@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("output_size", [7, 14])
def test_roi_align_matches_reference(sampling_ratio, aligned, output_size):
    g = torch.Generator().manual_seed(output_size + 10 * sampling_ratio + aligned)
    features = torch.randn(2, 2, 13, 17, generator=g, dtype=torch.float64)
    # stride 4: image 68 x 52; RoIs reach outside the map on every side
    rois = _random_rois(8, g, 2, 68.0, 60.0)
    got = roi_align(features, rois, output_size, 0.25, sampling_ratio, aligned)
    want = _ref_roi_align(features, rois, output_size, output_size, 0.25, sampling_ratio,
                          aligned)
    assert got.shape == (8, 2, output_size, output_size)
    assert torch.allclose(got, want, atol=1e-12)


@pytest.mark.parametrize("sampling_ratio", [0, 1, 3])
def test_large_rois_and_rectangular_output(sampling_ratio):
    """Large RoIs relative to the output: exercises the per-sample row layout."""
    g = torch.Generator().manual_seed(5)
    features = torch.randn(1, 3, 40, 50, generator=g, dtype=torch.float64)
    rois = _random_rois(6, g, 1, 50.0, 45.0)
    got = roi_align(features, rois, (2, 3), 1.0, sampling_ratio, True)
    want = _ref_roi_align(features, rois, 2, 3, 1.0, sampling_ratio, True)
    assert torch.allclose(got, want, atol=1e-12)


def test_many_small_chunks(monkeypatch):
    g = torch.Generator().manual_seed(6)
    features = torch.randn(3, 2, 9, 11, generator=g, dtype=torch.float64, requires_grad=True)
    rois = _random_rois(12, g, 3, 22.0, 20.0)
    rois[:4, 3] = rois[:4, 1] + 1.0  # flat and tall RoIs land in other chunks than square ones
    rois[4:8, 4] = rois[4:8, 2] + 1.5
    weights = torch.randn(12, 2, 3, 3, generator=g, dtype=torch.float64)
    whole = roi_align(features, rois, 3, 0.5, 0, True)
    (grad_whole,) = torch.autograd.grad((whole * weights).sum(), features)
    monkeypatch.setattr(roi_align_module, "_CHUNK_ELEMENTS", 50)
    got = roi_align(features, rois, 3, 0.5, 0, True)
    (grad_chunked,) = torch.autograd.grad((got * weights).sum(), features)
    want = _ref_roi_align(features.detach(), rois, 3, 3, 0.5, 0, True)
    assert torch.allclose(got, want, atol=1e-12) and torch.allclose(whole, want, atol=1e-12)
    assert torch.allclose(grad_chunked, grad_whole, atol=1e-12)


def test_float32_and_channels_last():
    g = torch.Generator().manual_seed(8)
    features = torch.randn(2, 4, 12, 10, generator=g)
    rois = _random_rois(10, g, 2, 40.0, 30.0).float()
    want = _ref_roi_align(features, rois, 7, 7, 0.25, 0, True)
    got = roi_align(features, rois, 7, 0.25, 0, True)
    assert got.dtype == torch.float32 and got.is_contiguous()
    assert torch.allclose(got.double(), want, atol=1e-5)
    last = roi_align(features.contiguous(memory_format=torch.channels_last), rois, 7, 0.25)
    assert torch.allclose(last, got, atol=1e-6)


def test_edge_rois():
    features = torch.arange(2 * 5 * 6, dtype=torch.float64).view(1, 2, 5, 6)
    rois = torch.tensor([
        [0.0, 2.0, 1.0, 2.0, 4.0],       # zero width
        [0.0, 3.0, 3.0, 3.0, 3.0],       # a point
        [0.0, 30.0, 30.0, 40.0, 40.0],   # entirely outside the map
        [0.0, -3.0, -3.0, 1.0, 1.0],     # partly outside, top-left
        [0.0, 4.0, 3.0, 9.0, 8.0],       # partly outside, bottom-right
        [0.0, 0.0, 0.0, 6.0, 5.0],       # the whole map
        [0.0, 3.0, 2.0, 1.0, 1.0],       # inverted corners
    ], dtype=torch.float64)
    for aligned in (True, False):
        for sampling_ratio in (0, 2):
            got = roi_align(features, rois, 2, 1.0, sampling_ratio, aligned)
            want = _ref_roi_align(features, rois, 2, 2, 1.0, sampling_ratio, aligned)
            assert torch.allclose(got, want, atol=1e-12), (aligned, sampling_ratio)
    # aligned, adaptive: zero-width RoI has no samples and pools to 0; outside RoI pools to 0
    got = roi_align(features, rois, 2, 1.0, 0, True)
    assert got[0].abs().max() == 0 and got[2].abs().max() == 0


def test_samples_exactly_on_the_valid_border():
    """One sample per RoI at its centre: x = W and x = -1 still count, x > W does not."""
    features = (torch.arange(30, dtype=torch.float64) + 1).view(1, 1, 5, 6)  # H=5, W=6
    rois = torch.tensor([[0.0, 5.0, 1.0, 7.0, 3.0],     # centre (x=6=W, y=2): column 5
                         [0.0, -2.0, -2.0, 0.0, 0.0],   # centre (-1, -1): clamps to (0, 0)
                         [0.0, 5.5, 1.0, 7.5, 3.0],     # centre x=6.5 > W: outside
                         [0.0, 1.0, 4.0, 3.0, 6.0]],    # centre (2, y=5=H): row 4
                        dtype=torch.float64)
    got = roi_align(features, rois, 1, 1.0, 1, aligned=False).flatten().tolist()
    assert got == [features[0, 0, 2, 5].item(), 1.0, 0.0, features[0, 0, 4, 2].item()]


def test_empty_rois():
    features = torch.randn(1, 3, 4, 4)
    out = roi_align(features, torch.zeros(0, 5), (7, 5), 0.5)
    assert out.shape == (0, 3, 7, 5) and out.dtype == torch.float32


def test_module_matches_function():
    g = torch.Generator().manual_seed(9)
    features = torch.randn(1, 2, 8, 8, generator=g)
    rois = _random_rois(4, g, 1, 32.0, 20.0).float()
    layer = RoIAlign(output_size=(3, 4), spatial_scale=0.25, sampling_ratio=2, aligned=False)
    assert torch.equal(layer(features, rois), roi_align(features, rois, (3, 4), 0.25, 2, False))
    assert "sampling_ratio=2" in repr(layer)


@pytest.mark.parametrize("sampling_ratio,aligned", [(0, True), (2, False)])
def test_gradcheck(sampling_ratio, aligned):
    g = torch.Generator().manual_seed(10)
    features = torch.randn(2, 2, 5, 6, generator=g, dtype=torch.float64, requires_grad=True)
    rois = torch.tensor([[0.0, 0.3, 0.7, 4.2, 3.9], [1.0, -1.0, 1.0, 7.5, 6.0],
                         [0.0, 2.0, 2.0, 2.5, 2.2]], dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda f: roi_align(f, rois, 2, 1.0, sampling_ratio, aligned), (features,))


def test_gradient_matches_reference_weights():
    """Sum of outputs: each feature pixel's gradient is its total bilinear weight."""
    features = torch.zeros(1, 1, 4, 5, dtype=torch.float64, requires_grad=True)
    rois = torch.tensor([[0.0, 1.0, 1.0, 4.0, 3.0]], dtype=torch.float64)
    roi_align(features, rois, 2, 1.0, 2, True).sum().backward()
    want = torch.zeros(4, 5, dtype=torch.float64)
    for y in range(4):
        for x in range(5):
            unit = torch.zeros(1, 1, 4, 5, dtype=torch.float64)
            unit[0, 0, y, x] = 1.0
            want[y, x] = _ref_roi_align(unit, rois, 2, 2, 1.0, 2, True).sum()
    assert torch.allclose(features.grad[0, 0], want, atol=1e-12)
