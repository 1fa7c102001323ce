"""detzoo.ops.nms against a plain-Python greedy NMS (float64) and hand-worked cases."""
from importlib import import_module

import pytest
import torch

from detzoo.ops.nms import batched_nms, multiclass_nms, nms

# detzoo.ops re-exports a function under the module's name, so fetch the module itself.
nms_module = import_module("detzoo.ops.nms")


def _ref_nms(boxes, scores, thr):
    """Textbook greedy NMS: visit by descending score (ties: lower index first)."""
    b = boxes.double().tolist()
    order = sorted(range(len(b)), key=lambda i: (-float(scores[i]), i))
    area = [(x[2] - x[0]) * (x[3] - x[1]) for x in b]
    suppressed, keep = set(), []
    for pos, i in enumerate(order):
        if i in suppressed:
            continue
        keep.append(i)
        for j in order[pos + 1:]:
            w = max(0.0, min(b[i][2], b[j][2]) - max(b[i][0], b[j][0]))
            h = max(0.0, min(b[i][3], b[j][3]) - max(b[i][1], b[j][1]))
            union = area[i] + area[j] - w * h
            if union > 0 and w * h / union > thr:  # 0/0 (two empty boxes) suppresses nothing
                suppressed.add(j)
    return keep


def _ref_batched(boxes, scores, idxs, thr):
    keep = []
    for group in sorted(set(idxs.tolist())):
        members = [i for i in range(len(idxs)) if idxs[i] == group]
        sub = _ref_nms(boxes[members], scores[members], thr)
        keep += [members[k] for k in sub]
    return sorted(keep, key=lambda i: (-float(scores[i]), i))


def _random_boxes(n, generator, extent=200.0, size=60.0):
    xy = torch.rand(n, 2, generator=generator) * extent - 20
    wh = torch.rand(n, 2, generator=generator) * size
    return torch.cat([xy, xy + wh], dim=1)


@pytest.fixture(params=["dense", "blocked", "mixed"])
def path(request, monkeypatch):
    """Run each test through each strategy: padded matrices, small blocks, or both mixed
    (small groups batched into several padded matrices, big groups in blocks)."""
    if request.param == "blocked":
        monkeypatch.setattr(nms_module, "_DENSE_CELLS", 0)
        monkeypatch.setattr(nms_module, "_BLOCK_ROWS", 7)
    elif request.param == "mixed":
        monkeypatch.setattr(nms_module, "_DENSE_CELLS", 150)
        monkeypatch.setattr(nms_module, "_BLOCK_ROWS", 5)
    return request.param


@pytest.mark.parametrize("n,thr", [(1, 0.5), (2, 0.5), (40, 0.3), (250, 0.5), (400, 0.7)])
def test_nms_matches_greedy_reference(path, n, thr):
    g = torch.Generator().manual_seed(n)
    boxes, scores = _random_boxes(n, g), torch.rand(n, generator=g)
    keep = nms(boxes, scores, thr)
    assert keep.dtype == torch.long
    assert keep.tolist() == _ref_nms(boxes, scores, thr)


def test_nms_float64_and_ties(path):
    g = torch.Generator().manual_seed(3)
    boxes = _random_boxes(120, g).double()
    scores = torch.randint(0, 4, (120,), generator=g).double()  # many equal scores
    assert nms(boxes, scores, 0.4).tolist() == _ref_nms(boxes, scores, 0.4)


def test_nms_edge_cases(path):
    empty = nms(torch.zeros(0, 4), torch.zeros(0), 0.5)
    assert empty.shape == (0,) and empty.dtype == torch.long
    box = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    # identical boxes: only the best survives; identical scores: the lowest index wins
    assert nms(box.repeat(5, 1), torch.tensor([0.1, 0.9, 0.3, 0.9, 0.2]), 0.5).tolist() == [1]
    # zero-area boxes never suppress each other (0/0 IoU), even when identical
    point = torch.tensor([[5.0, 5.0, 5.0, 9.0]])
    assert nms(point.repeat(3, 1), torch.tensor([0.5, 0.7, 0.6]), 0.1).tolist() == [1, 2, 0]


def test_nms_threshold_is_strict_and_chains_resolve_greedily(path):
    scores = torch.tensor([0.9, 0.8])
    # IoU exactly 0.5 (inter 2, union 4): kept; IoU 0.75: suppressed
    half = torch.tensor([[0.0, 0.0, 3.0, 1.0], [1.0, 0.0, 4.0, 1.0]])
    assert nms(half, scores, 0.5).tolist() == [0, 1]
    three_q = torch.tensor([[0.0, 0.0, 4.0, 1.0], [1.0, 0.0, 4.0, 1.0]])
    assert nms(three_q, scores, 0.5).tolist() == [0]
    # IoU 1/3 in float32 is 0.33333334 > 1/3, but mmcv passes the threshold as a C float too,
    # so the comparison is 0.33333334 > 0.33333334: kept (torchvision, in double, would drop it)
    third = torch.tensor([[0.0, 0.0, 2.0, 1.0], [1.0, 0.0, 3.0, 1.0]])
    assert nms(third, scores, 1 / 3).tolist() == [0, 1]
    assert nms(third, scores, 0.3333333).tolist() == [0]
    # A suppresses B, B overlaps C but B is gone, so C stays (Fast NMS would drop C)
    chain = torch.tensor([[0.0, 0.0, 10.0, 1.0], [2.0, 0.0, 12.0, 1.0], [4.0, 0.0, 14.0, 1.0]])
    assert nms(chain, torch.tensor([0.9, 0.8, 0.7]), 0.6).tolist() == [0, 2]
    # long chain of shifted boxes: every other one survives
    n = 30
    x = torch.arange(n, dtype=torch.float32) * 2
    long_chain = torch.stack([x, torch.zeros(n), x + 10, torch.ones(n)], dim=1)
    want = list(range(0, n, 2))
    assert nms(long_chain, 1 - x / 100, 0.6).tolist() == want


@pytest.mark.parametrize("n,groups", [(60, 3), (300, 7), (300, 40)])
def test_batched_nms_matches_per_group_reference(path, n, groups):
    g = torch.Generator().manual_seed(n + groups)
    boxes, scores = _random_boxes(n, g), torch.rand(n, generator=g)
    idxs = torch.randint(0, groups, (n,), generator=g) * 3  # sparse, non-contiguous ids
    dets, keep = batched_nms(boxes, scores, idxs, 0.5)
    want = _ref_batched(boxes, scores, idxs, 0.5)
    assert keep.tolist() == want
    assert dets.shape == (len(want), 5)
    assert torch.equal(dets[:, :4], boxes[want]) and torch.equal(dets[:, 4], scores[want])
    _, agnostic = batched_nms(boxes, scores, idxs, 0.5, class_agnostic=True)
    assert agnostic.tolist() == _ref_nms(boxes, scores, 0.5)


def test_batched_nms_groups_never_interact(path):
    # negative coordinates: mmcv's offset trick alone would let these groups overlap
    boxes = torch.tensor([[-50.0, -50.0, -10.0, -10.0], [-50.0, -50.0, -10.0, -10.0]])
    _, keep = batched_nms(boxes, torch.tensor([0.9, 0.8]), torch.tensor([0, 1]), 0.5)
    assert keep.tolist() == [0, 1]


def test_batched_nms_empty():
    dets, keep = batched_nms(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long),
                             0.5)
    assert dets.shape == (0, 5) and dets.dtype == torch.float32
    assert keep.shape == (0,) and keep.dtype == torch.long


def _ref_multiclass(bboxes, scores, thr, iou, max_num):
    n, c = scores.shape[0], scores.shape[1] - 1
    per_class = bboxes.shape[1] > 4
    cand_boxes, cand_scores, cand_labels = [], [], []
    for i in range(n):
        for k in range(c):
            if scores[i, k] > thr:
                cand_boxes.append(bboxes[i, 4 * k:4 * k + 4] if per_class else bboxes[i])
                cand_scores.append(scores[i, k])
                cand_labels.append(k)
    if not cand_boxes:
        return [], []
    cb, cs, cl = torch.stack(cand_boxes), torch.stack(cand_scores), torch.tensor(cand_labels)
    keep = _ref_batched(cb, cs, cl, iou)
    if max_num > 0:
        keep = keep[:max_num]
    return keep, [cand_labels[k] for k in keep], cb, cs


@pytest.mark.parametrize("per_class,max_num", [(True, -1), (True, 15), (False, 10)])
def test_multiclass_nms_matches_reference(per_class, max_num):
    g = torch.Generator().manual_seed(7)
    n, c = 50, 4
    bboxes = torch.cat([_random_boxes(n, g) for _ in range(c if per_class else 1)], dim=1)
    scores = torch.softmax(torch.randn(n, c + 1, generator=g) * 2, dim=1)
    scores[0, 1] = 0.05  # exactly at the threshold: dropped (strict >)
    dets, labels = multiclass_nms(bboxes, scores, 0.05, 0.5, max_num=max_num)
    keep, want_labels, cb, cs = _ref_multiclass(bboxes, scores, 0.05, 0.5, max_num)
    assert labels.tolist() == want_labels
    assert torch.equal(dets[:, :4], cb[keep]) and torch.equal(dets[:, 4], cs[keep])
    assert not ((dets[:, 4] == 0.05) & (labels == 1)).any()
    # background column never produces detections
    assert int(labels.max()) < c
    _, _, inds = multiclass_nms(bboxes, scores, 0.05, 0.5, max_num=max_num, return_inds=True)
    flat = scores[:, :-1].reshape(-1)
    assert torch.equal(flat[inds], dets[:, 4])
    # score_factors multiply after the threshold test: same candidates, scaled scores
    factored, factored_labels = multiclass_nms(bboxes, scores, 0.05, 0.5, max_num=max_num,
                                               score_factors=torch.full((n,), 0.5))
    assert torch.equal(factored_labels, labels)
    assert torch.allclose(factored[:, 4], dets[:, 4] * 0.5)


def test_multiclass_nms_nothing_above_threshold():
    dets, labels = multiclass_nms(torch.rand(5, 8), torch.full((5, 3), 0.01), 0.05, 0.5)
    assert dets.shape == (0, 5) and labels.shape == (0,) and labels.dtype == torch.long
