"""RoIAlign (average mode) in pure PyTorch, matching mmcv / torchvision ``roi_align``.

Reference semantics (mmcv ``roi_align`` CPU/CUDA kernels, ``pool_mode='avg'``):
  - RoI corners are ``coord * spatial_scale - 0.5`` when ``aligned`` else ``coord *
    spatial_scale``; with ``aligned=False`` the RoI width/height are raised to at least 1.
  - Each of the ``oh x ow`` bins averages a ``gh x gw`` grid of bilinear samples at
    ``start + p * bin + (i + 0.5) * bin / g``, where ``g = sampling_ratio`` or, when that is 0,
    ``ceil(roi_size / out_size)`` per RoI; the divisor is ``max(gh * gw, 1)``.
  - A sample with ``y < -1 or y > H or x < -1 or x > W`` contributes 0; otherwise negative
    coordinates clamp to 0, a sample at or past the last row/column uses that row/column only.

How it is computed: the bilinear weight of a sample factorises into a y part and an x part,
and so does the out-of-range test, so a whole RoI is ``out = Wy @ F @ Wx^T`` per channel, with
``Wy [oh, Ly]`` summing the y weights of every sample of a bin onto the feature rows it
touches (and ``Wx`` likewise). The rows used are either the RoI's contiguous row span (good for
adaptive sampling, whose cost then no longer depends on the sample count) or the two rows of
each sample (good for a fixed sampling ratio on large RoIs); the cheaper is chosen per chunk of
RoIs of similar window shape. Features are gathered as ``[chunk, Ly, Lx, C]`` windows with
``index_select``; the backward pass applies the transposed products and ``index_add``s them into
one gradient buffer. No gradient flows to ``rois`` (as in mmcv).
"""
from typing import Tuple, Union

import numpy as np
import torch
from torch import Tensor, nn

# Feature values gathered per chunk of RoIs (window rows x cols x channels, summed over RoIs):
# 4 MB buffers are reused by the allocator, whereas much larger ones are mapped and
# page-faulted anew on every chunk (measured: 16 MB chunks ~20% slower, 64 MB several times).
_CHUNK_ELEMENTS = 1 << 20


def _pair(size: Union[int, Tuple[int, int]]) -> Tuple[int, int]:
    if isinstance(size, int):
        return size, size
    height, width = size
    return int(height), int(width)


def _axis_samples(start: Tensor, bin_size: Tensor, grid: Tensor, out_len: int, size: int):
    """Sample rows (or columns) of every bin along one axis.

    Args:
        start, bin_size: ``[K]`` RoI start and bin size in feature pixels.
        grid: ``[K]`` long, samples per bin along this axis.
    Returns:
        ``low, high [K, out_len, G]`` long indices and ``w_low, w_high`` weights (0 for padding
        entries ``i >= grid`` and out-of-range samples), ``valid [K, out_len, G]`` bool.
    """
    max_grid = max(int(grid.max()), 1)
    bins = torch.arange(out_len, device=start.device, dtype=start.dtype)
    steps = torch.arange(max_grid, device=start.device, dtype=start.dtype)
    grid_f = grid.clamp(min=1).to(start.dtype)[:, None, None]
    bin_size = bin_size[:, None, None]
    # Same operation order as the kernels: start + p * bin + (i + .5) * bin / g.
    pos = start[:, None, None] + bins[None, :, None] * bin_size \
        + (steps[None, None, :] + 0.5) * bin_size / grid_f
    valid = (steps[None, None, :] < grid[:, None, None]) & (pos >= -1.0) & (pos <= size)
    pos = pos.clamp(min=0)
    low = pos.floor().long()
    at_edge = low >= size - 1
    low = torch.where(at_edge, torch.full_like(low, size - 1), low)
    high = torch.where(at_edge, low, low + 1)
    frac = torch.where(at_edge, torch.zeros_like(pos), pos - low.to(pos.dtype))
    valid_f = valid.to(pos.dtype)
    return low, high, (1 - frac) * valid_f, frac * valid_f, valid


def _span(low: Tensor, high: Tensor, valid: Tensor) -> Tuple[Tensor, Tensor]:
    """First index and length ``[K]`` of the contiguous range each RoI's samples touch."""
    big = torch.iinfo(torch.long).max
    first = torch.where(valid, low, torch.full_like(low, big)).flatten(1).amin(1)
    last = torch.where(valid, high, torch.full_like(high, -1)).flatten(1).amax(1)
    empty = last < 0
    first = torch.where(empty, torch.zeros_like(first), first)
    return first, torch.where(empty, torch.ones_like(last), last - first + 1)


def _axis_layout(low, high, w_low, w_high, valid, use_span: bool, size: int):
    """Feature indices ``[k, L]`` and weights ``[k, out, L]`` for one axis of a chunk."""
    num, out_len, max_grid = low.shape
    if use_span:
        first, length = _span(low, high, valid)
        width = int(length.max())
        index = (first[:, None] + torch.arange(width, device=low.device)).clamp(max=size - 1)
        weight = w_low.new_zeros(num, out_len, width)
        weight.scatter_add_(2, (low - first[:, None, None]).clamp(0, width - 1), w_low)
        weight.scatter_add_(2, (high - first[:, None, None]).clamp(0, width - 1), w_high)
        return index, weight
    # Two entries per sample; bin p only weighs its own 2 * G entries (block diagonal).
    index = torch.stack([low, high], dim=-1).reshape(num, -1)
    per_bin = torch.stack([w_low, w_high], dim=-1).reshape(num, 1, out_len, 2 * max_grid)
    eye = torch.eye(out_len, dtype=w_low.dtype, device=w_low.device)[None, :, :, None]
    return index, (eye * per_bin).reshape(num, out_len, -1)


def _plan(rois: Tensor, out_h: int, out_w: int, spatial_scale: float, sampling_ratio: int,
          aligned: bool, height: int, width: int, channels: int, dtype: torch.dtype):
    """Per chunk of RoIs: ``(roi_ids, rows_base [k, Ly], cols [k, Lx], weight_y [k, oh, Ly],
    weight_x [k, ow, Lx])``, where window cell ``(y, x)`` is row ``rows_base[y] + cols[x]`` of
    the ``[B*H*W, C]`` features; and the per-RoI sample count ``[K]`` that divides the sums."""
    num_rois = rois.shape[0]
    coord_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    rois = rois.detach().to(coord_dtype)
    offset = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (rois[:, i] * spatial_scale - offset for i in range(1, 5))
    roi_w, roi_h = x2 - x1, y2 - y1
    if not aligned:
        roi_w, roi_h = roi_w.clamp(min=1.0), roi_h.clamp(min=1.0)
    bin_w, bin_h = roi_w / out_w, roi_h / out_h
    if sampling_ratio > 0:
        grid_h = torch.full((num_rois,), sampling_ratio, dtype=torch.long, device=rois.device)
        grid_w = grid_h
    else:
        grid_h = torch.ceil(roi_h / out_h).long().clamp(min=0)
        grid_w = torch.ceil(roi_w / out_w).long().clamp(min=0)
    count = (grid_h * grid_w).clamp(min=1).to(dtype)

    ys = _axis_samples(y1, bin_h, grid_h, out_h, height)
    xs = _axis_samples(x1, bin_w, grid_w, out_w, width)
    len_h = torch.minimum(_span(ys[0], ys[1], ys[4])[1], 2 * out_h * grid_h.clamp(min=1))
    len_w = torch.minimum(_span(xs[0], xs[1], xs[4])[1], 2 * out_w * grid_w.clamp(min=1))
    # Chunks share one padded [Ly, Lx] window, so group RoIs of similar shape: bands of Ly
    # (factors of 2^(1/3)), and within a band ascending Lx.
    band = torch.floor(torch.log2(len_h.to(torch.float64)) * 3).long()
    order = torch.argsort(band * (int(len_w.max()) + 1) + len_w)
    band_sorted = band[order].cpu().numpy()
    rows_sorted = len_h[order].cpu().numpy()
    cols_sorted = len_w[order].cpu().numpy()
    batch_index = rois[:, 0].long()

    chunks, start = [], 0
    while start < num_rois:
        band_end = int(np.searchsorted(band_sorted, band_sorted[start], side="right"))
        count_so_far = np.arange(1, band_end - start + 1)
        padded = (count_so_far * np.maximum.accumulate(rows_sorted[start:band_end])
                  * cols_sorted[start:band_end] * channels)
        stop = start + max(1, int(np.searchsorted(padded, _CHUNK_ELEMENTS, side="right")))
        ids = order[start:stop]
        max_gh, max_gw = max(int(grid_h[ids].max()), 1), max(int(grid_w[ids].max()), 1)
        cy = [t[ids, :, :max_gh] for t in ys]
        cx = [t[ids, :, :max_gw] for t in xs]
        span_h = int(_span(cy[0], cy[1], cy[4])[1].max())
        span_w = int(_span(cx[0], cx[1], cx[4])[1].max())
        rows, weight_y = _axis_layout(*cy, use_span=span_h <= 2 * out_h * max_gh, size=height)
        cols, weight_x = _axis_layout(*cx, use_span=span_w <= 2 * out_w * max_gw, size=width)
        # Feature row of window cell (y, x) is rows_base[y] + cols[x] (built when used: the
        # full index of every chunk at once can be far larger than the plan itself).
        rows_base = (batch_index[ids, None] * height + rows) * width
        chunks.append((ids, rows_base, cols, weight_y.to(dtype), weight_x.to(dtype)))
        start = stop
    return chunks, count


class _RoIAlignFunction(torch.autograd.Function):
    """RoIAlign sums as ``Wy @ window @ Wx^T``; backward applies the transposed product.

    Forward keeps only the plan (indices and weights), not the gathered windows, and backward
    accumulates every chunk into one gradient buffer (an ``index_select`` per chunk under plain
    autograd would allocate and sum one feature-sized gradient per chunk).
    """

    @staticmethod
    def forward(ctx, features, rois, out_h, out_w, spatial_scale, sampling_ratio, aligned):
        num_images, channels, height, width = features.shape
        chunks, count = _plan(rois, out_h, out_w, spatial_scale, sampling_ratio, aligned,
                              height, width, channels, features.dtype)
        # Channels-last rows so every gathered feature vector is one contiguous copy (free when
        # the caller already holds channels-last features).
        flat = features.permute(0, 2, 3, 1).contiguous().view(-1, channels)
        output = features.new_empty(rois.shape[0], out_h, out_w, channels)
        for ids, rows_base, cols, weight_y, weight_x in chunks:
            (num, len_y), len_x = rows_base.shape, cols.shape[1]
            flat_index = (rows_base[:, :, None] + cols[:, None, :]).view(-1)
            window = flat.index_select(0, flat_index).view(num, len_y, len_x * channels)
            # Rows first: [k, oh, Ly] @ [k, Ly, Lx * C] -> [k, oh, Lx, C]; then columns.
            per_row = torch.bmm(weight_y, window).view(num, out_h, len_x, channels)
            output[ids] = torch.matmul(weight_x.unsqueeze(1), per_row)
        ctx.chunks, ctx.count, ctx.feature_shape = chunks, count, features.shape
        output /= count[:, None, None, None]
        return output.permute(0, 3, 1, 2).contiguous()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output):
        num_images, channels, height, width = ctx.feature_shape
        grad = (grad_output / ctx.count[:, None, None, None]).permute(0, 2, 3, 1)
        grad_flat = grad.new_zeros(num_images * height * width, channels)
        for ids, rows_base, cols, weight_y, weight_x in ctx.chunks:
            (num, len_y), len_x = rows_base.shape, cols.shape[1]
            flat_index = (rows_base[:, :, None] + cols[:, None, :]).view(-1)
            per_row = torch.matmul(weight_x.transpose(1, 2).unsqueeze(1), grad[ids])
            window = torch.bmm(weight_y.transpose(1, 2), per_row.reshape(num, -1, len_x * channels))
            grad_flat.index_add_(0, flat_index, window.view(-1, channels))
        grad_features = grad_flat.view(num_images, height, width, channels).permute(0, 3, 1, 2)
        return grad_features, None, None, None, None, None, None


def roi_align(features: Tensor, rois: Tensor, output_size: Union[int, Tuple[int, int]],
              spatial_scale: float = 1.0, sampling_ratio: int = 0, aligned: bool = True) -> Tensor:
    """Average RoIAlign of ``features [B, C, H, W]`` over ``rois [K, 5]``.

    Args:
        rois: rows ``(batch_index, x1, y1, x2, y2)`` in input-image pixels.
        output_size: ``oh`` = ``ow`` or ``(oh, ow)``.
        spatial_scale: feature pixels per image pixel (1 / stride).
        sampling_ratio: samples per bin along each axis; 0 = adaptive ``ceil(roi / out)``.
        aligned: shift by -0.5 feature pixel (pixel-centre model, MMDetection default).
    Returns:
        ``[K, C, oh, ow]`` of ``features.dtype``; differentiable w.r.t. ``features``.
    """
    if features.dim() != 4 or rois.dim() != 2 or rois.shape[1] != 5:
        raise ValueError(f"roi_align: expected features [B, C, H, W] and rois [K, 5], got "
                         f"{tuple(features.shape)} and {tuple(rois.shape)}")
    out_h, out_w = _pair(output_size)
    _, channels, height, width = features.shape
    if rois.shape[0] == 0 or height == 0 or width == 0:
        return features.new_zeros(rois.shape[0], channels, out_h, out_w)
    return _RoIAlignFunction.apply(features, rois, out_h, out_w, float(spatial_scale),
                                   int(sampling_ratio), bool(aligned))


class RoIAlign(nn.Module):
    """Module form of :func:`roi_align` (mmcv ``RoIAlign`` arguments, ``pool_mode='avg'``)."""

    def __init__(self, output_size: Union[int, Tuple[int, int]], spatial_scale: float = 1.0,
                 sampling_ratio: int = 0, aligned: bool = True):
        super().__init__()
        self.output_size = _pair(output_size)
        self.spatial_scale = float(spatial_scale)
        self.sampling_ratio = int(sampling_ratio)
        self.aligned = bool(aligned)

    def forward(self, features: Tensor, rois: Tensor) -> Tensor:
        """``features [B, C, H, W]``, ``rois [K, 5]`` -> ``[K, C, oh, ow]``."""
        return roi_align(features, rois, self.output_size, self.spatial_scale,
                         self.sampling_ratio, self.aligned)

    def extra_repr(self) -> str:
        return (f"output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
                f"sampling_ratio={self.sampling_ratio}, aligned={self.aligned}")
