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
Groups (batched NMS) are sorted group-major; small groups are resolved together as one padded
``[groups, width, width]`` matrix, never across groups.
"""
from itertools import accumulate
from typing import List, Optional, Tuple

import torch
from torch import Tensor

# Largest number of (group, row, column) cells resolved as one dense padded matrix.
_DENSE_CELLS = 1 << 18
# Rows per block for a group too large for that.
_BLOCK_ROWS = 256


def _iou_exceeds(a: Tensor, area_a: Tensor, b: Tensor, area_b: Tensor, threshold: float,
                 offset: float = 0.0) -> Tensor:
    """Bool ``[..., P, Q]``: IoU of ``a [..., 4, P]`` and ``b [..., 4, Q]`` is > threshold.

    Boxes come coordinate-major (each coordinate a contiguous row): broadcasting over strided
    columns is an order of magnitude slower.
    """
    if offset:
        return _iou_exceeds_offset(a, area_a, b, area_b, threshold, offset)
    ax1, ay1, ax2, ay2 = (c.unsqueeze(-1) for c in a.unbind(-2))
    bx1, by1, bx2, by2 = (c.unsqueeze(-2) for c in b.unbind(-2))
    # Few, reused [P, Q] buffers: fresh large allocations cost more than the arithmetic here.
    inter = torch.minimum(ax2, bx2)
    scratch = torch.maximum(ax1, bx1)
    inter.sub_(scratch).clamp_(min=0)
    height = torch.minimum(ay2, by2)
    torch.maximum(ay1, by1, out=scratch)
    inter.mul_(height.sub_(scratch).clamp_(min=0))
    # Same operation order as the C++ kernels: (area_i + area_j) - inter.
    union = torch.add(area_a.unsqueeze(-1), area_b.unsqueeze(-2), out=scratch).sub_(inter)
    return inter.div_(union) > threshold


def _iou_exceeds_offset(a: Tensor, area_a: Tensor, b: Tensor, area_b: Tensor, threshold: float,
                        offset: float) -> Tensor:
    """``_iou_exceeds`` with Detectron-1 "+offset" widths, as PaddlePaddle's ``JaccardOverlap``
    with ``normalized=False`` (paddle/fluid/operators/detection/nms_util.h): disjoint boxes
    overlap 0, otherwise the overlap is ``(w + offset) * (h + offset)``. (mmcv ``offset=1``
    clamps ``w + 1`` at 0 instead; the two differ only for boxes less than a pixel apart.)"""
    ax1, ay1, ax2, ay2 = (c.unsqueeze(-1) for c in a.unbind(-2))
    bx1, by1, bx2, by2 = (c.unsqueeze(-2) for c in b.unbind(-2))
    width = torch.minimum(ax2, bx2) - torch.maximum(ax1, bx1)
    height = torch.minimum(ay2, by2) - torch.maximum(ay1, by1)
    overlaps = (width >= 0) & (height >= 0)
    inter = ((width + offset) * (height + offset)).where(overlaps, torch.zeros_like(width))
    union = (area_a.unsqueeze(-1) + area_b.unsqueeze(-2)) - inter
    return (inter / union) > threshold


def _box_areas(coords: Tensor, offset: float) -> Tensor:
    """Areas of coordinate-major boxes ``[4, N]``; with an offset, Paddle's ``BBoxArea``:
    ``(w + offset) * (h + offset)``, and 0 for a box with x2 < x1 or y2 < y1."""
    if not offset:
        return (coords[2] - coords[0]) * (coords[3] - coords[1])
    width, height = coords[2] - coords[0], coords[3] - coords[1]
    valid = (width >= 0) & (height >= 0)
    return ((width + offset) * (height + offset)).where(valid, torch.zeros_like(width))


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
                num_groups: int, width: int, threshold: float, offset: float = 0.0) -> Tensor:
    """Keep mask over ``coords [4, N]`` sorted group-major, each group one padded matrix."""
    padded = coords.new_zeros(num_groups, 4, width)
    padded_area = areas.new_zeros(num_groups, width)
    alive = torch.zeros(num_groups, width, dtype=torch.bool, device=coords.device)
    padded[group_index, :, rank] = coords.T
    padded_area[group_index, rank] = areas
    alive[group_index, rank] = True
    suppresses = _iou_exceeds(padded, padded_area, padded, padded_area, threshold, offset)
    suppresses.triu_(diagonal=1)
    return _resolve_greedy(suppresses, alive)[group_index, rank]


def _keep_blocked(coords: Tensor, areas: Tensor, threshold: float, offset: float = 0.0) -> Tensor:
    """Keep mask over the score-sorted ``coords [4, N]`` of one group, block by block."""
    num = coords.shape[1]
    keep = torch.zeros(num, dtype=torch.bool, device=coords.device)
    kept_coords, kept_areas = coords[:, :0], areas[:0]
    for start in range(0, num, _BLOCK_ROWS):
        stop = min(start + _BLOCK_ROWS, num)
        blk, blk_area = coords[:, start:stop], areas[start:stop]
        # One IoU call against the boxes kept so far and the block itself.
        num_prev = kept_areas.shape[0]
        hit = _iou_exceeds(blk, blk_area, torch.cat([kept_coords, blk], dim=1),
                           torch.cat([kept_areas, blk_area]), threshold, offset)
        alive = ~hit[:, :num_prev].any(dim=1)
        blk_keep = _resolve_greedy(hit[:, num_prev:].triu(diagonal=1), alive)
        keep[start:stop] = blk_keep
        kept_coords = torch.cat([kept_coords, blk[:, blk_keep]], dim=1)
        kept_areas = torch.cat([kept_areas, blk_area[blk_keep]])
    return keep


def _group_batches(sizes: List[int]):
    """Split consecutive groups into batches whose padded matrix fits ``_DENSE_CELLS``.

    Yields ``(first_group, stop_group, width)``; a batch of one group wider than the budget
    allows has ``width`` 0 and is resolved block by block instead.
    """
    first = 0
    while first < len(sizes):
        width = sizes[first]
        if width * width > _DENSE_CELLS:
            yield first, first + 1, 0
            first += 1
            continue
        stop = first + 1
        while stop < len(sizes):
            wider = max(width, sizes[stop])
            if (stop + 1 - first) * wider * wider > _DENSE_CELLS:
                break
            width, stop = wider, stop + 1
        yield first, stop, width
        first = stop


def _grouped_nms(boxes: Tensor, scores: Tensor, groups: Optional[Tensor],
                 iou_threshold: float, offset: float = 0.0) -> Tensor:
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
        areas = _box_areas(coords, offset)

        # Several small groups share one padded matrix; one big group goes block by block.
        # Both keep every [rows, cols] buffer near 1 MB: fresh allocations much larger than
        # that are page-faulted in again on every call and cost more than the arithmetic.
        sizes = torch.bincount(group_index).tolist()
        bounds = list(accumulate(sizes, initial=0))
        keep = torch.empty(order.shape[0], dtype=torch.bool, device=order.device)
        for first, stop, width in _group_batches(sizes):
            rows = slice(bounds[first], bounds[stop])
            if width == 0:
                keep[rows] = _keep_blocked(coords[:, rows], areas[rows], iou_threshold, offset)
                continue
            local_group = group_index[rows] - first
            starts = torch.tensor(bounds[first:stop], device=order.device) - bounds[first]
            rank = torch.arange(rows.stop - rows.start, device=order.device) - starts[local_group]
            keep[rows] = _keep_dense(coords[:, rows], areas[rows], local_group, rank,
                                     stop - first, width, iou_threshold, offset)
        kept = order[keep]
        if groups is not None:
            # Back to one global ranking: descending score, lower index first on ties.
            kept = kept.sort().values
            kept = kept[torch.sort(scores.detach()[kept], descending=True, stable=True).indices]
    return kept


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float, offset: float = 0.0) -> Tensor:
    """Greedy NMS of ``boxes [N, 4]`` (xyxy) with ``scores [N]``.

    ``offset=1`` gives Detectron-1 / PaddlePaddle (``normalized=False``) IoUs, whose widths are
    ``x2 - x1 + 1`` (see ``_iou_exceeds_offset``); the default 0 is mmcv's.
    Returns the kept indices (``LongTensor [K]``), ordered by descending score.
    """
    return _grouped_nms(boxes, scores, None, iou_threshold, offset)


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float,
                class_agnostic: bool = False, offset: float = 0.0) -> Tuple[Tensor, Tensor]:
    """NMS run independently for each value of ``idxs [N]`` (class or level ids).

    Returns ``(dets [K, 5] = (x1, y1, x2, y2, score), keep LongTensor [K])`` ordered by
    descending score, as mmcv ``batched_nms``. Like mmcv, the IoU is computed on boxes shifted
    by ``idx * (max coordinate + 1)`` (this changes float rounding, so it decides borderline
    cases the same way); suppression never crosses groups even where that shift would not
    separate them (negative coordinates). ``offset``: as in ``nms``.
    """
    if boxes.shape[0] == 0:
        dets = torch.cat([boxes.reshape(0, 4), scores.reshape(0, 1).to(boxes.dtype)], dim=1)
        return dets, torch.zeros(0, dtype=torch.long, device=boxes.device)
    if class_agnostic:
        keep = _grouped_nms(boxes, scores, None, iou_threshold, offset)
    else:
        shifted = boxes.detach()
        if shifted.dtype not in (torch.float32, torch.float64):
            shifted = shifted.float()  # half precision cannot hold class-offset coordinates
        offsets = idxs.to(shifted) * (shifted.max() + 1)
        keep = _grouped_nms(shifted + offsets[:, None], scores, idxs, iou_threshold, offset)
    dets = torch.cat([boxes[keep], scores[keep, None].to(boxes.dtype)], dim=1)
    return dets, keep


def _batched_nms_first(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float,
                       max_num: int, offset: float = 0.0) -> Tuple[Tensor, Tensor]:
    """``batched_nms(boxes, scores, idxs, iou_threshold)`` cut to its first ``max_num`` rows,
    without suppressing the candidates that cannot reach them.

    Whether a candidate survives depends only on the better-ranked candidates of its group, so
    NMS over the best-ranked prefix (descending score, lower index first on ties: the order the
    full run uses) decides the prefix exactly as the full run does; once it keeps ``max_num``,
    nothing later can rank among the first ``max_num``. The prefix grows x4 until then. The
    class offsets are those of the full set, so even the float rounding is the full run's.
    """
    num = boxes.shape[0]
    prefix = 4 * max_num
    if num <= prefix:
        dets, keep = batched_nms(boxes, scores, idxs, iou_threshold, offset=offset)
        return dets[:max_num], keep[:max_num]
    shifted = boxes.detach()
    if shifted.dtype not in (torch.float32, torch.float64):
        shifted = shifted.float()
    shifted = shifted + (idxs.to(shifted) * (shifted.max() + 1))[:, None]
    order = torch.sort(scores.detach(), descending=True, stable=True).indices
    while True:
        head = order[:prefix]
        kept = _grouped_nms(shifted[head], scores[head], idxs[head], iou_threshold, offset)
        if kept.numel() >= max_num or prefix >= num:
            break
        prefix *= 4
    keep = head[kept[:max_num]]
    return torch.cat([boxes[keep], scores[keep, None].to(boxes.dtype)], dim=1), keep


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

    if max_num > 0:  # same result as the full NMS cut to max_num, often far cheaper
        dets, keep = _batched_nms_first(bboxes, scores, labels, iou_threshold, max_num)
    else:
        dets, keep = batched_nms(bboxes, scores, labels, iou_threshold)
    if return_inds:
        return dets, labels[keep], inds[keep]
    return dets, labels[keep]
