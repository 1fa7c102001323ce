"""Anchors, box coder, assigner and samplers against hand-worked cases and brute force."""
import math

import numpy as np
import pytest
import torch

from detzoo.models.task_modules import (AnchorGenerator, DeltaXYWHBBoxCoder, MaxIoUAssigner, PseudoSampler,
                                        RandomSampler)


def iou_py(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def test_base_anchors_hand_worked():
    gen = AnchorGenerator(strides=[4], ratios=[0.5, 1.0, 2.0], scales=[8])
    base = gen.base_anchors[0]
    # stride 4, scale 8 -> 32 px; ratio r: h = 32 sqrt(r), w = 32 / sqrt(r); centred at (0, 0)
    for i, r in enumerate([0.5, 1.0, 2.0]):
        w, h = 32 / math.sqrt(r), 32 * math.sqrt(r)
        assert base[i].tolist() == pytest.approx([-w / 2, -h / 2, w / 2, h / 2], abs=1e-5)


def test_grid_anchor_order_row_major_then_anchor():
    gen = AnchorGenerator(strides=[8], ratios=[0.5, 1.0, 2.0], scales=[8, 16])
    anchors = gen.single_level_grid_anchors(0, (3, 5))
    assert anchors.shape == (3 * 5 * 6, 4)
    base = gen.base_anchors[0]
    for y in range(3):
        for x in range(5):
            for a in range(6):
                expect = base[a] + torch.tensor([x * 8, y * 8, x * 8, y * 8], dtype=torch.float32)
                assert torch.allclose(anchors[(y * 5 + x) * 6 + a], expect)
    # ratio-major order: anchors 0,1 share ratio 0.5 with scales 8 and 16
    w0 = base[0, 2] - base[0, 0]
    w1 = base[1, 2] - base[1, 0]
    assert float(w1 / w0) == pytest.approx(2.0)


def test_octave_scales():
    gen = AnchorGenerator(strides=[8], ratios=[1.0], octave_base_scale=4, scales_per_octave=3)
    assert gen.scales.tolist() == pytest.approx([4, 4 * 2 ** (1 / 3), 4 * 2 ** (2 / 3)])


def test_valid_flags_mask_batch_padding():
    gen = AnchorGenerator(strides=[16], ratios=[1.0], scales=[8])
    # feature map 4x6 (padded batch 64x96), this image padded to 40x50 -> ceil: 3 rows, 4 cols
    flags = gen.valid_flags([(4, 6)], (40, 50, 3))[0].reshape(4, 6)
    expect = torch.zeros(4, 6, dtype=torch.bool)
    expect[:3, :4] = True
    assert torch.equal(flags, expect)


def test_coder_hand_worked_and_round_trip():
    coder = DeltaXYWHBBoxCoder(target_stds=(0.1, 0.1, 0.2, 0.2))
    prop = torch.tensor([[0.0, 0.0, 10.0, 20.0]])
    gt = torch.tensor([[5.0, 0.0, 25.0, 20.0]])
    # centres (5,10) -> (15,10); w 10 -> 20: dx = 1, dy = 0, dw = log 2, dh = 0; / stds
    d = coder.encode(prop, gt)
    assert d[0].tolist() == pytest.approx([10.0, 0.0, math.log(2) / 0.2, 0.0], abs=1e-5)
    g = torch.Generator().manual_seed(0)
    props = torch.rand(50, 2, generator=g) * 100
    props = torch.cat([props, props + 5 + torch.rand(50, 2, generator=g) * 50], 1)
    gts = torch.rand(50, 2, generator=g) * 100
    gts = torch.cat([gts, gts + 5 + torch.rand(50, 2, generator=g) * 50], 1)
    back = coder.decode(props, coder.encode(props, gts), max_shape=None)
    assert torch.allclose(back, gts, atol=1e-3)


def test_coder_clamps_and_clips():
    coder = DeltaXYWHBBoxCoder()
    rois = torch.tensor([[10.0, 10.0, 20.0, 20.0]])
    out = coder.decode(rois, torch.tensor([[0.0, 0.0, 100.0, 100.0]]), max_shape=None)
    # dw clamped to |log(16/1000)|: width 10 * 1000/16 = 625, centred at 15
    assert (out[0, 2] - out[0, 0]).item() == pytest.approx(625.0, rel=1e-5)
    clipped = coder.decode(rois, torch.tensor([[0.0, 0.0, 3.0, 3.0]]), max_shape=(30, 40))
    assert clipped[0].tolist() == pytest.approx([0.0, 0.0, 40.0, 30.0])
    # class-specific deltas [N, 4C] decode to [N, 4C]
    assert coder.decode(rois, torch.zeros(1, 12), max_shape=(30, 40)).shape == (1, 12)


def assign_brute_force(bboxes, gts, pos_thr, neg_thr, min_pos, low_quality):
    n, g = len(bboxes), len(gts)
    ov = [[iou_py(gts[j], bboxes[i]) for i in range(n)] for j in range(g)]
    inds = [-1] * n
    for i in range(n):
        col = [ov[j][i] for j in range(g)]
        best = max(col)
        arg = col.index(best)
        if 0 <= best < neg_thr:
            inds[i] = 0
        if best >= pos_thr:
            inds[i] = arg + 1
    if low_quality:
        for j in range(g):
            best = max(ov[j])
            if best >= min_pos:
                for i in range(n):
                    if ov[j][i] == best:
                        inds[i] = j + 1
    return inds


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("low_quality", [True, False])
def test_max_iou_assigner_matches_brute_force(seed, low_quality):
    g = torch.Generator().manual_seed(seed)
    def boxes(n):
        xy = torch.rand(n, 2, generator=g) * 60
        return torch.cat([xy, xy + 4 + torch.rand(n, 2, generator=g) * 30], 1).double()
    bboxes, gts = boxes(40), boxes(5)
    bboxes[7] = gts[2]  # an exact duplicate: IoU 1
    labels = torch.arange(5) + 10
    assigner = MaxIoUAssigner(0.5, 0.3, min_pos_iou=0.3, match_low_quality=low_quality)
    res = assigner.assign(bboxes, gts, gt_labels=labels)
    expect = assign_brute_force(bboxes.tolist(), gts.tolist(), 0.5, 0.3, 0.3, low_quality)
    assert res.gt_inds.tolist() == expect
    pos = res.gt_inds > 0
    assert torch.equal(res.labels[pos], labels[res.gt_inds[pos] - 1])
    assert (res.labels[~pos] == -1).all()


def test_assigner_no_gt_and_ignore():
    # min_pos_iou > 0: with 0, a gt whose best IoU is 0 would claim every zero-IoU box (as in MMDetection)
    assigner = MaxIoUAssigner(0.5, 0.5, min_pos_iou=0.3, ignore_iof_thr=0.5)
    bboxes = torch.tensor([[0.0, 0, 10, 10], [50, 50, 60, 60]])
    res = assigner.assign(bboxes, torch.zeros(0, 4), gt_labels=torch.zeros(0, dtype=torch.long))
    assert res.gt_inds.tolist() == [0, 0]
    res = assigner.assign(bboxes, torch.tensor([[100.0, 100, 120, 120]]),
                          gt_bboxes_ignore=torch.tensor([[48.0, 48, 62, 62]]))
    assert res.gt_inds.tolist() == [0, -1]  # the second lies inside an ignore region


def test_random_sampler_counts_and_gt_first():
    torch.manual_seed(0)
    gts = torch.tensor([[0.0, 0, 10, 10], [20, 20, 40, 40]])
    labels = torch.tensor([3, 4])
    xy = torch.rand(300, 2) * 50
    bboxes = torch.cat([xy, xy + 10], 1)
    assign = MaxIoUAssigner(0.5, 0.5, min_pos_iou=0.5, match_low_quality=False).assign(bboxes, gts, gt_labels=labels)
    n_pos_avail = int((assign.gt_inds > 0).sum()) + 2
    sampler = RandomSampler(num=64, pos_fraction=0.25, add_gt_as_proposals=True)
    s = sampler.sample(assign, bboxes, gts, labels)
    assert s.pos_inds.numel() == min(16, n_pos_avail)
    assert s.pos_inds.numel() + s.neg_inds.numel() == 64
    assert len(set(s.pos_inds.tolist()) & set(s.neg_inds.tolist())) == 0
    # every sampled positive overlaps its ground truth by >= 0.5 and carries its label
    for box, gt, lab, assigned in zip(s.pos_bboxes, s.pos_gt_bboxes, s.pos_gt_labels, s.pos_assigned_gt_inds):
        assert iou_py(box.tolist(), gt.tolist()) >= 0.5 - 1e-6
        assert lab == labels[assigned]
    assert s.pos_is_gt.sum() <= 2


def test_pseudo_sampler_takes_all():
    assign = MaxIoUAssigner(0.5, 0.4).assign(torch.tensor([[0.0, 0, 10, 10], [0, 0, 5, 10], [30, 30, 40, 40]]),
                                             torch.tensor([[0.0, 0, 10, 10]]))
    s = PseudoSampler().sample(assign, torch.zeros(3, 4), torch.tensor([[0.0, 0, 10, 10]]))
    assert sorted(s.pos_inds.tolist()) == [0, 1] and s.neg_inds.tolist() == [2]


def test_delta_coder_decodes_no_rois_to_an_empty_result():
    from detzoo.models.task_modules import DeltaXYWHBBoxCoder

    coder = DeltaXYWHBBoxCoder(target_means=[0.0] * 4, target_stds=[0.1, 0.1, 0.2, 0.2])
    for channels in (4, 12):
        out = coder.decode(torch.zeros(0, 4), torch.zeros(0, channels), max_shape=(10, 10))
        assert tuple(out.shape) == (0, channels)
