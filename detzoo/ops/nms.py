"""Exact greedy non-maximum suppression in vectorised PyTorch.

Semantics follow mmcv ``nms`` (``mmcv/ops/csrc/pytorch/cpu/nms.cpp``): boxes are visited by
descending score and a box is dropped when its IoU with an already kept box is ``>`` the
threshold. IoU is ``inter / (area_i + area_j - inter)`` with widths ``x2 - x1`` (``offset=0``),
without eps: two zero-area boxes give NaN, which suppresses nothing, as in C++. The comparison
is done in the boxes' dtype, so for float32 the threshold is rounded to float32 as mmcv's
``float iou_threshold`` is (torchvision compares in double; they differ only when an IoU equals
the rounded threshold). Ties in score are broken by the lower input index first (stable sort).

How the greedy result is found without a Python loop over boxes: let ``S[i, j]`` (``i`` before
``j`` in score order) say that ``i`` would suppress ``j``. The greedy keep vector is the unique
fixed point of ``keep[j] = not any_i(keep[i] and S[i, j])``; iterating that map from any start
reaches it in (longest suppression chain + 1) steps, each a small matrix product. Large inputs
are cut into blocks of score-sorted rows: a block is first checked against the boxes kept from
earlier blocks, then resolved internally with the fixed point, so memory stays O(block * N).
"""
from typing import Optional, Tuple

import torch
from torch import Tensor

# Largest number of (group, row, column) cells resolved as one dense padded matrix.
_DENSE_CELLS = 1 << 22
# Rows per block when the dense matrix would be bigger than that.
_BLOCK_ROWS = 256


def _iou_exceeds(a: Tensor, area_a: Tensor, b: Tensor, area_b: Tensor, threshold: float) -> Tensor:
    """Bool ``[..., P, Q]``: IoU of ``a [..., 4, P]`` and ``b [..., 4, Q]`` is > threshold.

    Boxes come coordinate-major (each coordinate a contiguous row): broadcasting over strided
    columns is an order of magnitude slower.
    """
    ax1, ay1, ax2, ay2 = (c.unsqueeze(-1) for c in a.unbind(-2))
    bx1, by1, bx2, by2 = (c.unsqueeze(-2) for c in b.unbind(-2))
    w = torch.minimum(ax2, bx2).sub_(torch.maximum(ax1, bx1)).clamp_(min=0)
    h = torch.minimum(ay2, by2).sub_(torch.maximum(ay1, by1)).clamp_(min=0)
    inter = w.mul_(h)
    # Same operation order as the C++ kernels: (area_i + area_j) - inter.
    union = (area_a.unsqueeze(-1) + area_b.unsqueeze(-2)).sub_(inter)
    return inter.div_(union) > threshold


def _resolve_greedy(suppresses: Tensor, alive: Tensor) -> Tensor:
    """Greedy keep mask ``[..., M]`` from a strictly upper-triangular ``suppresses [..., M, M]``.

    ``alive`` marks candidates not already removed; dead ones neither survive nor suppress.
    """
    weights = suppresses.to(torch.float32)
    keep = alive
    for _ in range(alive.shape[-1] + 1):
        hit = torch.matmul(keep.to(torch.float32).unsqueeze(-2), weights).squeeze(-2) > 0
        new_keep = alive & ~hit
        if torch.equal(new_keep, keep):
            break
        keep = new_keep
    return keep


def _keep_dense(coords: Tensor, areas: Tensor, group_index: Tensor, rank: Tensor,
                num_groups: int, width: int, threshold: float) -> Tensor:
    """Keep mask over ``coords [4, N]`` sorted group-major, each group one padded matrix."""
    padded = coords.new_zeros(num_groups, 4, width)
    padded_area = areas.new_zeros(num_groups, width)
    alive = torch.zeros(num_groups, width, dtype=torch.bool, device=coords.device)
    padded[group_index, :, rank] = coords.T
    padded_area[group_index, rank] = areas
    alive[group_index, rank] = True
    suppresses = _iou_exceeds(padded, padded_area, padded, padded_area, threshold)
    suppresses.triu_(diagonal=1)
    return _resolve_greedy(suppresses, alive)[group_index, rank]


def _keep_blocked(coords: Tensor, areas: Tensor, group_index: Tensor, threshold: float) -> Tensor:
    """Keep mask over ``coords [4, N]`` sorted group-major, block by block (large groups)."""
    num = coords.shape[1]
    keep = torch.zeros(num, dtype=torch.bool, device=coords.device)
    kept_coords, kept_areas, kept_groups = coords[:, :0], areas[:0], group_index[:0]
    for start in range(0, num, _BLOCK_ROWS):
        stop = min(start + _BLOCK_ROWS, num)
        blk, blk_area = coords[:, start:stop], areas[start:stop]
        blk_group = group_index[start:stop]
        alive = torch.ones(stop - start, dtype=torch.bool, device=coords.device)
        # Earlier blocks can only share the group of this block's first row (group-major order).
        first = int(torch.searchsorted(kept_groups, blk_group[:1]))
        if first < kept_groups.shape[0]:
            hit = _iou_exceeds(blk, blk_area, kept_coords[:, first:], kept_areas[first:],
                               threshold)
            alive &= ~(hit.any(dim=1) & (blk_group == blk_group[0]))
        suppresses = _iou_exceeds(blk, blk_area, blk, blk_area, threshold)
        suppresses &= blk_group[:, None] == blk_group[None, :]
        suppresses.triu_(diagonal=1)
        blk_keep = _resolve_greedy(suppresses, alive)
        keep[start:stop] = blk_keep
        kept_coords = torch.cat([kept_coords, blk[:, blk_keep]], dim=1)
        kept_areas = torch.cat([kept_areas, blk_area[blk_keep]])
        kept_groups = torch.cat([kept_groups, blk_group[blk_keep]])
    return keep


def _grouped_nms(boxes: Tensor, scores: Tensor, groups: Optional[Tensor],
                 iou_threshold: float) -> Tensor:
    """Indices kept by greedy NMS run independently within each group, by descending score."""
    if boxes.dim() != 2 or boxes.shape[-1] != 4 or scores.shape != boxes.shape[:1]:
        raise ValueError(f"nms: expected boxes [N, 4] and scores [N], got {tuple(boxes.shape)} "
                         f"and {tuple(scores.shape)}")
    if boxes.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    with torch.no_grad():
        work = boxes if boxes.dtype in (torch.float32, torch.float64) else boxes.float()
        work = work.detach()
        order = torch.sort(scores.detach(), descending=True, stable=True).indices
        if groups is None:
            group_index = torch.zeros_like(order)
        else:
            by_group = torch.sort(groups.detach()[order], stable=True).indices
            order = order[by_group]
            group_index = torch.unique_consecutive(groups.detach()[order], return_inverse=True)[1]
        coords = work[order].T.contiguous()
        areas = (coords[2] - coords[0]) * (coords[3] - coords[1])

        sizes = torch.bincount(group_index)
        num_groups, width = sizes.shape[0], int(sizes.max())
        if num_groups * width * width <= _DENSE_CELLS:
            group_start = torch.cumsum(sizes, 0) - sizes
            rank = torch.arange(order.shape[0], device=order.device) - group_start[group_index]
            keep = _keep_dense(coords, areas, group_index, rank, num_groups, width,
                               iou_threshold)
        else:
            keep = _keep_blocked(coords, areas, group_index, iou_threshold)
        kept = order[keep]
        if groups is not None:
            # Back to one global ranking: descending score, lower index first on ties.
            kept = kept.sort().values
            kept = kept[torch.sort(scores.detach()[kept], descending=True, stable=True).indices]
    return kept


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy NMS of ``boxes [N, 4]`` (xyxy) with ``scores [N]``.

    Returns the kept indices (``LongTensor [K]``), ordered by descending score.
    """
    return _grouped_nms(boxes, scores, None, iou_threshold)


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float,
                class_agnostic: bool = False) -> Tuple[Tensor, Tensor]:
    """NMS run independently for each value of ``idxs [N]`` (class or level ids).

    Returns ``(dets [K, 5] = (x1, y1, x2, y2, score), keep LongTensor [K])`` ordered by
    descending score, as mmcv ``batched_nms``. Like mmcv, the IoU is computed on boxes shifted
    by ``idx * (max coordinate + 1)`` (this changes float rounding, so it decides borderline
    cases the same way); suppression never crosses groups even where that shift would not
    separate them (negative coordinates).
    """
    if boxes.shape[0] == 0:
        dets = torch.cat([boxes.reshape(0, 4), scores.reshape(0, 1).to(boxes.dtype)], dim=1)
        return dets, torch.zeros(0, dtype=torch.long, device=boxes.device)
    if class_agnostic:
        keep = _grouped_nms(boxes, scores, None, iou_threshold)
    else:
        shifted = boxes.detach()
        if shifted.dtype not in (torch.float32, torch.float64):
            shifted = shifted.float()  # half precision cannot hold class-offset coordinates
        offsets = idxs.to(shifted) * (shifted.max() + 1)
        keep = _grouped_nms(shifted + offsets[:, None], scores, idxs, iou_threshold)
    dets = torch.cat([boxes[keep], scores[keep, None].to(boxes.dtype)], dim=1)
    return dets, keep


def multiclass_nms(multi_bboxes: Tensor, multi_scores: Tensor, score_thr: float,
                   iou_threshold: float, max_num: int = -1,
                   score_factors: Optional[Tensor] = None, return_inds: bool = False):
    """Class-aware NMS of R-CNN style outputs (MMDetection ``multiclass_nms``).

    Args:
        multi_bboxes: ``[N, C*4]`` class-specific boxes or ``[N, 4]`` shared by all classes.
        multi_scores: ``[N, C+1]``; the last column (background) is ignored.
        score_thr: candidates need ``score > score_thr`` (strict), tested before
            ``score_factors [N]`` (if given) multiplies the scores.
        iou_threshold: per-class NMS threshold.
        max_num: keep at most this many detections overall (``<= 0``: all).

    Returns:
        ``(dets [K, 5], labels LongTensor [K])`` sorted by descending score, plus
        ``inds [K]`` (indices into the flattened ``[N*C]`` candidates) if ``return_inds``.
    """
    num_rows, num_classes = multi_scores.shape[0], multi_scores.shape[1] - 1
    if multi_bboxes.shape[1] > 4:
        bboxes = multi_bboxes.reshape(num_rows, -1, 4)
    else:
        bboxes = multi_bboxes[:, None].expand(num_rows, num_classes, 4)
    scores = multi_scores[:, :-1]
    labels = torch.arange(num_classes, device=scores.device).view(1, -1).expand_as(scores)
    bboxes, scores, labels = bboxes.reshape(-1, 4), scores.reshape(-1), labels.reshape(-1)

    valid = scores > score_thr
    if score_factors is not None:
        scores = scores * score_factors.view(-1, 1).expand(num_rows, num_classes).reshape(-1)
    inds = valid.nonzero().squeeze(1)
    bboxes, scores, labels = bboxes[inds], scores[inds], labels[inds]

    dets, keep = batched_nms(bboxes, scores, labels, iou_threshold)
    if max_num > 0:
        dets, keep = dets[:max_num], keep[:max_num]
    if return_inds:
        return dets, labels[keep], inds[keep]
    return dets, labels[keep]
