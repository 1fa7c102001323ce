"""Mask R-CNN's mask branch (MMDetection ``FCNMaskHead``): convs, 2x upsample, per-class logits;
its training targets and loss, and pasting the predicted masks into the image."""
from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn as nn

from detzoo.errors import ConfigError, DataError
from detzoo.ops.masks import crop_and_resize_bitmaps, crop_and_resize_polygons, paste_masks_in_image
from ...build import build_if_needed
from ...layers import ConvModule
from ...losses import CrossEntropyLoss
from ...task_modules import SamplingResult

_UPSAMPLE_TYPES = (None, "deconv", "nearest", "bilinear")


class FCNMaskHead(nn.Module):
    """``[K, in_channels, 14, 14]`` RoI features -> ``[K, num_classes (1 if class_agnostic), 28, 28]``
    mask logits: ``num_convs`` 3x3 ConvModules (conv + ReLU), a 2x2 stride-2 transposed conv + ReLU
    (``upsample_cfg`` type "deconv"; "nearest"/"bilinear" use a weight-free ``nn.Upsample``
    without ReLU, None no upsampling), and a 1x1 ``conv_logits``.

    Parameter names follow MMDetection (``convs.i.conv.weight``, ``upsample.weight``,
    ``conv_logits.weight``), so its Mask R-CNN checkpoints load as they are.
    """

    def __init__(self, num_classes: int, num_convs: int = 4, roi_feat_size: int = 14, in_channels: int = 256,
                 conv_kernel_size: int = 3, conv_out_channels: int = 256,
                 upsample_cfg: Optional[dict] = dict(type="deconv", scale_factor=2),
                 class_agnostic: bool = False, conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None,
                 loss_mask=dict(type=CrossEntropyLoss, use_mask=True, loss_weight=1.0)):
        super().__init__()
        upsample_cfg = dict(upsample_cfg or dict(type=None))
        self.upsample_method = upsample_cfg.get("type")
        if self.upsample_method not in _UPSAMPLE_TYPES:
            raise ConfigError(f"FCNMaskHead upsample_cfg type {self.upsample_method!r}: must be one of "
                              f"{', '.join(map(repr, _UPSAMPLE_TYPES))}")
        self.scale_factor = int(upsample_cfg.get("scale_factor", 2))
        self.num_classes = num_classes
        self.class_agnostic = class_agnostic
        self.roi_feat_size = roi_feat_size      # kept for configs; the head works at any size
        self.loss_mask = build_if_needed(loss_mask)

        padding = (conv_kernel_size - 1) // 2
        self.convs = nn.ModuleList(
            ConvModule(in_channels if i == 0 else conv_out_channels, conv_out_channels, conv_kernel_size,
                       padding=padding, conv_cfg=conv_cfg, norm_cfg=norm_cfg)
            for i in range(num_convs))
        upsample_in = conv_out_channels if num_convs > 0 else in_channels
        if self.upsample_method is None:
            self.upsample = None
        elif self.upsample_method == "deconv":
            self.upsample = nn.ConvTranspose2d(upsample_in, conv_out_channels, self.scale_factor,
                                               stride=self.scale_factor)
        else:
            self.upsample = nn.Upsample(scale_factor=self.scale_factor, mode=self.upsample_method,
                                        align_corners=None if self.upsample_method == "nearest" else False)
        logits_in = conv_out_channels if self.upsample_method == "deconv" else upsample_in
        self.conv_logits = nn.Conv2d(logits_in, 1 if class_agnostic else num_classes, 1)
        self.relu = nn.ReLU(inplace=True)
        self.init_weights()

    def init_weights(self) -> None:
        """The convs keep ConvModule's init; upsample and logits as MMDetection (Kaiming normal,
        fan_out, ReLU gain; zero bias)."""
        for module in (self.upsample, self.conv_logits):
            if getattr(module, "weight", None) is not None:
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = conv(x)
        if self.upsample is not None:
            x = self.upsample(x)
            if self.upsample_method == "deconv":
                x = self.relu(x)
        return self.conv_logits(x)

    # -- training ------------------------------------------------------------------------------
    def get_targets(self, samples: List[SamplingResult], gt_masks: list, mask_size: int) -> torch.Tensor:
        """Float 0/1 targets ``[P_total, mask_size, mask_size]`` for the positives of every image,
        in order (MMDetection ``mask_target``).

        gt_masks: per image either a ``[n, H, W]`` bitmap tensor (or array) or, per instance, a list
        of polygon arrays. Bitmap boxes are first clipped to the mask's ``W x H`` as MMDetection
        does; polygons carry no size, so their boxes are used as they are (proposals are already
        clipped to the image, so this only matters for boxes outside the padded image).
        """
        targets = []
        for image, (sample, masks) in enumerate(zip(samples, gt_masks)):
            boxes, inds = sample.pos_bboxes[:, :4], sample.pos_assigned_gt_inds
            if boxes.shape[0] == 0:
                targets.append(boxes.new_zeros((0, mask_size, mask_size)))
                continue
            num_masks = masks.shape[0] if isinstance(masks, (torch.Tensor, np.ndarray)) else len(masks)
            largest = int(inds.max())
            if largest >= num_masks or int(inds.min()) < 0:
                raise DataError(f"gt_masks of image #{image}: {num_masks} masks, but a positive is assigned "
                                f"to ground truth #{largest} (masks and boxes must list the same instances)")
            if isinstance(masks, (torch.Tensor, np.ndarray)):
                masks = torch.as_tensor(masks)
                height, width = masks.shape[-2:]
                limits = boxes.new_tensor([width, height, width, height])
                boxes = torch.minimum(boxes.clamp(min=0), limits)
                targets.append(crop_and_resize_bitmaps(masks, boxes, inds, mask_size))
            else:
                targets.append(crop_and_resize_polygons(masks, boxes, inds, mask_size))
        if not targets:
            return torch.zeros((0, mask_size, mask_size))
        return torch.cat(targets)

    def loss(self, mask_logits: torch.Tensor, mask_targets: torch.Tensor,
             labels: torch.Tensor) -> Dict[str, torch.Tensor]:
        """``{"loss_mask"}``: BCE on each RoI's label channel (0 when class-agnostic); with no
        positive RoI a zero that still reaches the logits' graph."""
        if mask_logits.shape[0] == 0:
            return {"loss_mask": mask_logits.sum() * 0}
        if self.class_agnostic:
            labels = torch.zeros_like(labels)
        return {"loss_mask": self.loss_mask(mask_logits, mask_targets, labels)}

    # -- inference -----------------------------------------------------------------------------
    def mask_probs(self, mask_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``[N, C, S, S]`` logits -> ``[N, S, S]`` sigmoid of each detection's label channel."""
        channel = torch.zeros_like(labels) if self.class_agnostic else labels
        rows = torch.arange(mask_logits.shape[0], device=mask_logits.device)
        return mask_logits[rows, channel.long()].sigmoid()

    def paste(self, mask_probs: torch.Tensor, det_boxes: torch.Tensor, img_meta: dict,
              mask_thr_binary: float = 0.5, rescale: bool = True) -> torch.Tensor:
        """Masks ``[N, H, W]`` in the original image (``rescale``: ``det_boxes`` already in its
        pixels, ``(H, W)`` = ``ori_shape``) or in the network input (``img_shape``).

        Bool ``probability >= mask_thr_binary``; a negative threshold returns the float32
        probabilities (MMDetection returns them as uint8 * 255 there, for debugging).
        """
        height, width = img_meta["ori_shape" if rescale else "img_shape"][:2]
        threshold = mask_thr_binary if mask_thr_binary >= 0 else None
        if mask_probs.shape[0] == 0:
            return paste_masks_in_image(mask_probs.new_zeros((0, 1, 1)), det_boxes.new_zeros((0, 4)),
                                        height, width, threshold)
        return paste_masks_in_image(mask_probs, det_boxes[:, :4], height, width, threshold)

    def predict(self, mask_logits: torch.Tensor, det_boxes: torch.Tensor, det_labels: torch.Tensor,
                img_meta: dict, mask_thr_binary: float = 0.5, rescale: bool = True) -> torch.Tensor:
        """Logits ``[N, C, S, S]`` of one image's detections -> masks ``[N, H, W]`` (see ``paste``)."""
        return self.paste(self.mask_probs(mask_logits, det_labels), det_boxes, img_meta,
                          mask_thr_binary, rescale)
