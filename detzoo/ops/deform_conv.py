"""Deformable convolution v1 and v2 (modulated) in pure PyTorch, with mmcv's conventions.

Reference semantics (mmcv ``ops/deform_conv.py``, ``ops/modulated_deform_conv.py`` and the
``modulated_deformable_im2col`` kernel):
  - Output pixel ``(ho, wo)`` samples the input at ``y = ho * stride_h - pad_h + i * dil_h + dy``,
    ``x = wo * stride_w - pad_w + j * dil_w + dx`` for kernel tap ``k = i * kw + j``.
  - ``offset [N, deform_groups * 2 * kh * kw, Ho, Wo]``: per deform group, per tap, the pair
    ``(dy, dx)`` (channel ``g * 2K + 2k`` is dy, ``+ 1`` is dx). ``mask [N, deform_groups * kh *
    kw, Ho, Wo]`` scales each sample (channel ``g * K + k``). Deform group ``g`` serves the
    input channels ``g * C / deform_groups ... (g + 1) * C / deform_groups - 1``.
  - Sampling is bilinear with zeros outside the image (a corner outside ``[0, H-1] x [0, W-1]``
    contributes 0), as ``dmcn_im2col_bilinear``.
  - The samples then meet the weight as in a grouped convolution (``groups``).

How it is computed: the sample positions of all taps and output pixels form one sampling grid
per image and deform group, read with ``F.grid_sample`` (bilinear, zero padding: one
vectorised kernel on CPU and GPU); the samples, times the mask, are the im2col columns
``[N, C * K, Ho * Wo]`` that meet the weight in one matmul per conv group. Autograd gives the
gradients of input, offset, mask, weight and bias.

Modules keep mmcv's parameter names so MMDetection checkpoints load: ``weight`` (``[O, C/groups,
kh, kw]``), ``bias`` (v2 only) and ``conv_offset.{weight,bias}`` of the ``*Pack`` variants.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["deform_conv2d", "modulated_deform_conv2d", "DeformConv2d", "DeformConv2dPack",
           "ModulatedDeformConv2d", "ModulatedDeformConv2dPack"]

IntPair = Union[int, Tuple[int, int]]


def _pair(value: IntPair) -> Tuple[int, int]:
    if isinstance(value, int):
        return value, value
    first, second = value
    return int(first), int(second)


def _bilinear_sample(x: Tensor, py: Tensor, px: Tensor) -> Tensor:
    """Zero-padded bilinear samples of ``x [B, C, H, W]`` at pixel coordinates ``py, px
    [B, R, S]`` (0 = centre of the first row/column) -> ``[B, C, R, S]``.

    ``F.grid_sample`` with ``align_corners=False`` reads normalised ``g`` as pixel
    ``((g + 1) * size - 1) / 2``, so ``g = (2 * p + 1) / size - 1`` (valid for any size, also 1);
    its ``zeros`` padding gives 0 to each corner outside the image, as mmcv's kernel does.
    """
    h, w = x.shape[-2:]
    grid = torch.stack(((2 * px + 1) / w - 1, (2 * py + 1) / h - 1), dim=-1)
    return F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="zeros",
                         align_corners=False)


def _check_shapes(name: str, x: Tensor, offset: Tensor, mask: Optional[Tensor], weight: Tensor,
                  groups: int, deform_groups: int, out_hw: Tuple[int, int]) -> None:
    if x.dim() != 4 or weight.dim() != 4:
        raise ValueError(f"{name}: expected input [N, C, H, W] and weight [O, C/groups, kh, kw], "
                         f"got {tuple(x.shape)} and {tuple(weight.shape)}")
    n, c = x.shape[:2]
    out_c, c_per_group, kh, kw = weight.shape
    if c % groups or out_c % groups or c_per_group * groups != c:
        raise ValueError(f"{name}: input channels {c} and weight {tuple(weight.shape)} do not "
                         f"fit groups={groups}")
    if c % deform_groups:
        raise ValueError(f"{name}: input channels {c} are not divisible by "
                         f"deform_groups={deform_groups}")
    if out_hw[0] <= 0 or out_hw[1] <= 0:
        raise ValueError(f"{name}: input {tuple(x.shape)} is too small for the kernel "
                         f"(output would be {out_hw[0]}x{out_hw[1]})")
    expected = (n, deform_groups * 2 * kh * kw, *out_hw)
    if tuple(offset.shape) != expected:
        raise ValueError(f"{name}: offset must have shape {expected}, got {tuple(offset.shape)}")
    if mask is not None and tuple(mask.shape) != (n, deform_groups * kh * kw, *out_hw):
        raise ValueError(f"{name}: mask must have shape {(n, deform_groups * kh * kw, *out_hw)},"
                         f" got {tuple(mask.shape)}")


def modulated_deform_conv2d(input: Tensor, offset: Tensor, mask: Optional[Tensor], weight: Tensor,
                            bias: Optional[Tensor] = None, stride: IntPair = 1,
                            padding: IntPair = 0, dilation: IntPair = 1, groups: int = 1,
                            deform_groups: int = 1) -> Tensor:
    """Modulated deformable convolution (DCNv2); ``mask=None`` gives DCNv1.

    Args:
        input: ``[N, C, H, W]``.
        offset: ``[N, deform_groups * 2 * kh * kw, Ho, Wo]`` in mmcv's (dy, dx)-per-tap order.
        mask: ``[N, deform_groups * kh * kw, Ho, Wo]`` modulation (already through a sigmoid in
            :class:`ModulatedDeformConv2dPack`), or None.
        weight: ``[O, C / groups, kh, kw]``; bias: ``[O]`` or None.
    Returns:
        ``[N, O, Ho, Wo]`` with ``Ho = (H + 2 * pad_h - dil_h * (kh - 1) - 1) // stride_h + 1``.
    """
    stride_h, stride_w = _pair(stride)
    pad_h, pad_w = _pair(padding)
    dil_h, dil_w = _pair(dilation)
    kh, kw = weight.shape[2:] if weight.dim() == 4 else (0, 0)
    h, w = input.shape[-2:]
    out_h = (h + 2 * pad_h - dil_h * (kh - 1) - 1) // stride_h + 1
    out_w = (w + 2 * pad_w - dil_w * (kw - 1) - 1) // stride_w + 1
    _check_shapes("modulated_deform_conv2d", input, offset, mask, weight, groups, deform_groups,
                  (out_h, out_w))
    n, c = input.shape[:2]
    k = kh * kw
    # sample positions in at least float32: fp16 cannot place a sample inside a 1000-px map
    coord_dtype = torch.promote_types(offset.dtype, torch.float32)
    device = input.device
    tap_y = torch.arange(kh, device=device, dtype=coord_dtype).repeat_interleave(kw) * dil_h
    tap_x = torch.arange(kw, device=device, dtype=coord_dtype).repeat(kh) * dil_w
    rows = torch.arange(out_h, device=device, dtype=coord_dtype) * stride_h - pad_h
    cols = torch.arange(out_w, device=device, dtype=coord_dtype) * stride_w - pad_w
    base_y = (tap_y[:, None] + rows[None, :])[:, :, None]          # [K, Ho, 1]
    base_x = (tap_x[:, None] + cols[None, :])[:, None, :]          # [K, 1, Wo]
    offset = offset.to(coord_dtype).reshape(n * deform_groups, k, 2, out_h, out_w)
    py = (base_y + offset[:, :, 0]).reshape(n * deform_groups, k * out_h, out_w)
    px = (base_x + offset[:, :, 1]).reshape(n * deform_groups, k * out_h, out_w)
    # sample in at least float32 (half-precision inputs are upcast for the sampling only)
    grouped = input.reshape(n * deform_groups, c // deform_groups, h, w)
    samples = _bilinear_sample(grouped.to(torch.promote_types(input.dtype, torch.float32)),
                               py, px)                          # [N*dg, C/dg, K*Ho, Wo]
    columns = samples.reshape(n, deform_groups, c // deform_groups, k, out_h * out_w)
    if mask is not None:
        columns = columns * mask.reshape(n, deform_groups, 1, k, out_h * out_w).to(columns.dtype)
    columns = columns.to(input.dtype)
    columns = columns.reshape(n, groups, (c // groups) * k, out_h * out_w)
    out_c = weight.shape[0]
    kernel = weight.reshape(groups, out_c // groups, (c // groups) * k)
    out = torch.matmul(kernel.to(columns.dtype), columns)          # [N, groups, O/groups, L]
    out = out.reshape(n, out_c, out_h, out_w)
    if bias is not None:
        out = out + bias.to(out.dtype).reshape(1, -1, 1, 1)
    return out


def deform_conv2d(input: Tensor, offset: Tensor, weight: Tensor, stride: IntPair = 1,
                  padding: IntPair = 0, dilation: IntPair = 1, groups: int = 1,
                  deform_groups: int = 1) -> Tensor:
    """Deformable convolution v1 (no mask, no bias, as mmcv ``deform_conv2d``)."""
    return modulated_deform_conv2d(input, offset, None, weight, None, stride, padding, dilation,
                                   groups, deform_groups)


class _DeformConvBase(nn.Module):
    """Shared constructor: mmcv's attribute names and its uniform(+-1/sqrt(C*kh*kw)) init."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair,
                 stride: IntPair = 1, padding: IntPair = 0, dilation: IntPair = 1,
                 groups: int = 1, deform_groups: int = 1, bias: bool = False):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{type(self).__name__}: in_channels {in_channels} and out_channels "
                             f"{out_channels} must be divisible by groups={groups}")
        if in_channels % deform_groups:
            raise ValueError(f"{type(self).__name__}: in_channels {in_channels} must be "
                             f"divisible by deform_groups={deform_groups}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        self.dilation = _pair(dilation)
        self.groups = groups
        self.deform_groups = deform_groups
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups,
                                               *self.kernel_size))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_channels))
        else:
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.in_channels * self.kernel_size[0] * self.kernel_size[1])
        with torch.no_grad():
            self.weight.uniform_(-bound, bound)
            if self.bias is not None:
                self.bias.zero_()

    def _conv_offset(self, channels_per_tap: int) -> nn.Conv2d:
        return nn.Conv2d(self.in_channels,
                         self.deform_groups * channels_per_tap * self.kernel_size[0]
                         * self.kernel_size[1],
                         kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                         dilation=self.dilation, bias=True)

    def init_weights(self) -> None:
        """mmcv init: uniform main weight, zero bias, and a zero ``conv_offset`` (if any), so a
        fresh pack starts as a plain convolution (v1) or half of one (v2, sigmoid(0) = 0.5)."""
        self.reset_parameters()
        conv_offset = getattr(self, "conv_offset", None)
        if conv_offset is not None:
            nn.init.zeros_(conv_offset.weight)
            nn.init.zeros_(conv_offset.bias)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
                f"groups={self.groups}, deform_groups={self.deform_groups}, "
                f"bias={self.bias is not None}")


class DeformConv2d(_DeformConvBase):
    """DCNv1 layer: ``forward(x [N, C, H, W], offset) -> [N, O, Ho, Wo]``; no bias (as mmcv)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair,
                 stride: IntPair = 1, padding: IntPair = 0, dilation: IntPair = 1,
                 groups: int = 1, deform_groups: int = 1, bias: bool = False):
        if bias:
            raise ValueError("DeformConv2d has no bias (mmcv DeformConv2d supports bias=False "
                             "only); use DCNv2 for a biased deformable conv")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, deform_groups, bias=False)
        self.init_weights()

    def forward(self, x: Tensor, offset: Tensor) -> Tensor:
        return deform_conv2d(x, offset, self.weight, self.stride, self.padding, self.dilation,
                             self.groups, self.deform_groups)


class DeformConv2dPack(DeformConv2d):
    """DCNv1 that predicts its own offsets with ``conv_offset`` (``deform_groups * 2 * kh * kw``
    channels, zero-initialised); mmcv's ``DCN`` conv type."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.conv_offset = self._conv_offset(2)
        self.init_weights()

    def forward(self, x: Tensor) -> Tensor:
        return deform_conv2d(x, self.conv_offset(x), self.weight, self.stride, self.padding,
                             self.dilation, self.groups, self.deform_groups)


class ModulatedDeformConv2d(_DeformConvBase):
    """DCNv2 layer: ``forward(x, offset, mask) -> [N, O, Ho, Wo]``; bias by default (as mmcv)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair,
                 stride: IntPair = 1, padding: IntPair = 0, dilation: IntPair = 1,
                 groups: int = 1, deform_groups: int = 1, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, deform_groups, bias=bias)
        self.init_weights()

    def forward(self, x: Tensor, offset: Tensor, mask: Tensor) -> Tensor:
        return modulated_deform_conv2d(x, offset, mask, self.weight, self.bias, self.stride,
                                       self.padding, self.dilation, self.groups,
                                       self.deform_groups)


class ModulatedDeformConv2dPack(ModulatedDeformConv2d):
    """DCNv2 predicting offsets and mask with ``conv_offset`` (``deform_groups * 3 * kh * kw``
    channels, zero-initialised); mmcv's ``DCNv2`` conv type.

    As mmcv: the first two thirds of ``conv_offset``'s output are the offsets, the last third
    goes through a sigmoid to become the mask.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.conv_offset = self._conv_offset(3)
        self.init_weights()

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv_offset(x)
        split = out.shape[1] * 2 // 3
        offset, mask = out[:, :split], torch.sigmoid(out[:, split:])
        return modulated_deform_conv2d(x, offset, mask, self.weight, self.bias, self.stride,
                                       self.padding, self.dilation, self.groups,
                                       self.deform_groups)
