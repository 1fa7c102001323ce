"""What every R-CNN second stage shares: RoI packing, proposal sampling, the mask branch's
training step and turning per-image detections into final results (masks pasted, boxes rescaled).

``StandardRoIHead`` (Faster / Mask R-CNN) and ``CascadeRoIHead`` are both built from these, so the
sampling, the mask targets and the pasting exist once.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn

from detzoo.ops import rescale_boxes
from detzoo.structures import DetResult
from ..task_modules import SamplingResult


def boxes_to_rois(box_lists: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per image [K_i, >=4] boxes -> [sum K_i, 5] RoIs whose first column is the image index."""
    rois = [torch.cat([b.new_full((b.shape[0], 1), i), b[:, :4]], dim=1) for i, b in enumerate(box_lists)]
    return torch.cat(rois, dim=0)


def assign_and_sample(assigner, sampler, proposals: List[torch.Tensor], gt_bboxes: List[torch.Tensor],
                      gt_labels: List[torch.Tensor],
                      gt_bboxes_ignore: Optional[List[torch.Tensor]] = None) -> List[SamplingResult]:
    """Per image: match proposals [K_i, >=4] to ground truth, then draw positives/negatives."""
    samples = []
    for i, props in enumerate(proposals):
        boxes = props[:, :4]
        ignore = None if gt_bboxes_ignore is None else gt_bboxes_ignore[i]
        assign_result = assigner.assign(boxes, gt_bboxes[i], ignore, gt_labels[i])
        samples.append(sampler.sample(assign_result, boxes, gt_bboxes[i], gt_labels[i]))
    return samples


def mask_forward_train(roi_extractor: nn.Module, mask_head: nn.Module, feats: Sequence[torch.Tensor],
                       samples: List[SamplingResult], gt_masks: list, mask_size: int,
                       mask_feats: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
    """The mask branch's loss on the positive RoIs of ``samples`` (MMDetection ``mask_loss``).

    ``mask_feats``: the positives' features already computed ([P, C, S, S], positives of every
    image in order; C4 heads reuse the box branch's shared-head output), else pooled here."""
    if mask_feats is None:
        mask_feats = roi_extractor(feats, boxes_to_rois([s.pos_bboxes for s in samples]))
    mask_logits = mask_head(mask_feats)
    targets = mask_head.get_targets(samples, gt_masks, mask_size)
    labels = torch.cat([s.pos_gt_labels for s in samples])
    return mask_head.loss(mask_logits, targets, labels)


def rescale_result(result: DetResult, img_meta: dict) -> DetResult:
    """Boxes from the network input's pixels to the original image's (divide by scale_factor)."""
    if len(result) == 0:
        return result
    return DetResult(rescale_boxes(result.boxes, img_meta["scale_factor"]), result.scores, result.labels,
                     result.masks)


def finish_mask_results(mask_head: nn.Module, results: List[DetResult], mask_probs: List[torch.Tensor],
                        img_metas: List[dict], mask_thr_binary: float, rescale: bool) -> List[DetResult]:
    """Paste each image's [N_i, S, S] mask probabilities into the image.

    ``results`` hold boxes in network-input pixels. With ``rescale`` the boxes are divided by the
    scale factor and the masks pasted at ``ori_shape`` (MMDetection 3.x ``FCNMaskHead.
    predict_by_feat``), else pasted at ``img_shape``.
    """
    finished = []
    for result, probs, meta in zip(results, mask_probs, img_metas):
        if rescale:
            result = rescale_result(result, meta)
        masks = mask_head.paste(probs, result.boxes, meta, mask_thr_binary, rescale)
        finished.append(DetResult(result.boxes, result.scores, result.labels, masks))
    return finished


class BaseRoIHead(nn.Module):
    """Holds ``train_cfg``/``test_cfg`` (handed over by the detector) and the test-time mask path.

    Subclasses define ``forward_train`` and ``simple_test`` and, for masks, ``mask_probs``.
    """

    train_cfg: Optional[dict]
    test_cfg: Optional[dict]

    @property
    def with_mask(self) -> bool:
        return getattr(self, "mask_head", None) is not None

    @staticmethod
    def _build_stage_cfg(cfg: dict) -> dict:
        from ..build import build_if_needed

        cfg = dict(cfg)
        cfg["assigner"] = build_if_needed(cfg["assigner"])
        cfg["sampler"] = build_if_needed(cfg["sampler"])
        return cfg

    def mask_probs(self, feats: Sequence[torch.Tensor], mask_rois: torch.Tensor,
                   labels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def add_masks(self, feats: Sequence[torch.Tensor], results: List[DetResult], img_metas: List[dict],
                  rescale: bool) -> List[DetResult]:
        """Masks for detections whose boxes are in network-input pixels (then rescaled if asked)."""
        mask_rois = boxes_to_rois([r.boxes for r in results])
        labels = torch.cat([r.labels for r in results])
        if mask_rois.shape[0] == 0:
            probs = mask_rois.new_zeros((0, 1, 1))
        else:
            probs = self.mask_probs(feats, mask_rois, labels)
        per_image = probs.split([len(r) for r in results])
        head = self.mask_head[-1] if isinstance(self.mask_head, nn.ModuleList) else self.mask_head
        return finish_mask_results(head, results, list(per_image), img_metas,
                                   self.test_cfg.get("mask_thr_binary", 0.5), rescale)
