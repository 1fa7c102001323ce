"""PaddleDetection (fluid) test-time box arithmetic: each legacy op against a slow reference
written here from Paddle's operator source, hand-worked cases where the "+1" changes the answer,
and a converted (synthesised) R50-vd-FPN Faster R-CNN whose top proposal and top detection are
recomputed by hand.

References (PaddlePaddle ``paddle/fluid/operators/detection``): anchor_generator_op.h,
box_coder_op.h (DecodeCenterSize), bbox_util.h (BoxCoder, ClipTiledBoxes, FilterBoxes,
BoxToDelta), nms_util.h (JaccardOverlap, BBoxArea, NMS), generate_proposals_op.cc,
multiclass_nms_op.cc (NMSFast, MultiClassNMS), distribute_fpn_proposals_op.h; PaddleDetection
``static/ppdet/data/transform/operators.py`` (ResizeImage) and ``modeling/roi_heads/bbox_head.py``.
"""
import math
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from detzoo.data.transforms.paddle_transform import PaddleResize
from detzoo.models.paddle_compat import PaddleRoIExtractor, PaddleRPNHead, paddle_multiclass_nms
from detzoo.models.task_modules.anchors.legacy_anchor_generator import LegacyAnchorGenerator
from detzoo.models.task_modules.coders.legacy_delta_xywh_coder import LegacyDeltaXYWHBBoxCoder
from detzoo.ops import RoIAlign, nms

CLIP = math.log(1000.0 / 16.0)


# --- slow references, one loop per element, as the C++ does -------------------------------
def c_round(x):
    return math.floor(x + 0.5) if x >= 0 else math.ceil(x - 0.5)


def ref_anchors(feat_h, feat_w, stride, sizes, ratios, offset=0.5):
    """anchor_generator_op.h, [H * W * A, 4] in (h, w, a) order."""
    out = []
    for h in range(feat_h):
        for w in range(feat_w):
            x_ctr = w * stride + offset * (stride - 1)
            y_ctr = h * stride + offset * (stride - 1)
            for ar in ratios:
                for size in sizes:
                    base_w = c_round(math.sqrt(stride * stride / ar))
                    base_h = c_round(base_w * ar)
                    aw, ah = size / stride * base_w, size / stride * base_h
                    out.append([x_ctr - 0.5 * (aw - 1), y_ctr - 0.5 * (ah - 1),
                                x_ctr + 0.5 * (aw - 1), y_ctr + 0.5 * (ah - 1)])
    return np.array(out, dtype=np.float64)


def ref_decode(prior, delta, var, clamp_upper):
    """box_coder_op.h DecodeCenterSize (normalized=False); with clamp_upper, bbox_util.h BoxCoder."""
    w, h = prior[2] - prior[0] + 1, prior[3] - prior[1] + 1
    cx, cy = prior[0] + w / 2, prior[1] + h / 2
    dw, dh = var[2] * delta[2], var[3] * delta[3]
    if clamp_upper:
        dw, dh = min(dw, CLIP), min(dh, CLIP)
    tcx, tcy = var[0] * delta[0] * w + cx, var[1] * delta[1] * h + cy
    tw, th = math.exp(dw) * w, math.exp(dh) * h
    return [tcx - tw / 2, tcy - th / 2, tcx + tw / 2 - 1, tcy + th / 2 - 1]


def ref_iou(a, b):
    """nms_util.h JaccardOverlap(normalized=False)."""
    if b[0] > a[2] or b[2] < a[0] or b[1] > a[3] or b[3] < a[1]:
        return 0.0

    def area(box):
        if box[2] < box[0] or box[3] < box[1]:
            return 0.0
        return (box[2] - box[0] + 1) * (box[3] - box[1] + 1)
    iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
    ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
    return iw * ih / (area(a) + area(b) - iw * ih)


def ref_nms(boxes, scores, thr):
    """Greedy NMS, descending score (lower index first on ties), keep if IoU <= thr."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    kept = []
    for i in order:
        if all(ref_iou(boxes[i], boxes[k]) <= thr for k in kept):
            kept.append(i)
    return kept


def ref_multiclass_nms(boxes, scores, score_thr, thr, nms_top_k, keep_top_k):
    """multiclass_nms_op.cc on [N, C, 4] boxes / [N, C] foreground scores -> [(score, c, i)]."""
    picked = []
    for c in range(scores.shape[1]):
        cand = [i for i in range(scores.shape[0]) if scores[i, c] > score_thr]
        cand.sort(key=lambda i: -scores[i, c])
        if nms_top_k > -1:
            cand = cand[:nms_top_k]
        kept = []
        for i in cand:
            if all(ref_iou(boxes[i, c], boxes[k, c]) <= thr for k in kept):
                kept.append(i)
        picked += [(scores[i, c], c, i) for i in sorted(kept)]
    picked.sort(key=lambda t: -t[0])  # stable: (class, index) order on ties
    return picked[:keep_top_k] if keep_top_k > -1 else picked


def ref_level(box, min_level=2, max_level=5):
    """distribute_fpn_proposals_op.h."""
    w, h = box[2] - box[0], box[3] - box[1]
    area = 0.0 if (w < 0 or h < 0) else (w + 1) * (h + 1)
    if area == 0:
        return min_level
    lvl = math.floor(math.log2(math.sqrt(area) / 224) + 4)
    return min(max_level, max(lvl, min_level))


def ref_generate_proposals(scores, deltas, anchors, im_info, pre, post, thr, min_size):
    """generate_proposals_op.cc ProposalForOneImage for one level (variances 1)."""
    im_h, im_w, im_scale = im_info
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    if 0 < pre < len(scores):
        order = order[:pre]
    props = []
    for i in order:
        box = ref_decode(anchors[i], deltas[i], (1, 1, 1, 1), clamp_upper=True)
        box = [max(min(box[0], im_w - 1), 0), max(min(box[1], im_h - 1), 0),
               max(min(box[2], im_w - 1), 0), max(min(box[3], im_h - 1), 0)]
        props.append((box, scores[i]))
    min_size = max(min_size, 1.0)
    kept = []
    for box, score in props:
        ws, hs = box[2] - box[0] + 1, box[3] - box[1] + 1
        x_ctr, y_ctr = box[0] + ws / 2, box[1] + hs / 2
        ws_s, hs_s = (box[2] - box[0]) / im_scale + 1, (box[3] - box[1]) / im_scale + 1
        if ws_s >= min_size and hs_s >= min_size and x_ctr <= im_w and y_ctr <= im_h:
            kept.append((box, score))
    if not kept:
        return [([0.0, 0.0, 0.0, 0.0], 0.0)]
    keep = ref_nms([b for b, _ in kept], [s for _, s in kept], thr)[:post]
    return [kept[k] for k in keep]


# --- anchors ------------------------------------------------------------------------------
def test_anchors_hand_worked():
    gen = LegacyAnchorGenerator(strides=[4, 32], ratios=[0.5, 1.0, 2.0], sizes=[[32], [256]])
    # stride 4, size 32, ratio 0.5: base_w = round(sqrt(32)) = 6, base_h = round(3) = 3,
    # w = 8 * 6 = 48, h = 24, centre 0.5 * 3 = 1.5 -> 1.5 -+ 23.5 and 1.5 -+ 11.5
    assert gen.base_anchors[0][0].tolist() == [-22.0, -10.0, 25.0, 13.0]
    # stride 32, ratio 0.5: base_w = round(45.25) = 45, base_h = round(22.5) = 23 (C rounds halves
    # away from zero; round-half-even would give 22): w = 360, h = 184, centre 15.5
    assert gen.base_anchors[1][0].tolist() == [-164.0, -76.0, 195.0, 107.0]
    grid = gen.single_level_grid_anchors(0, (2, 3))
    assert grid[(1 * 3 + 2) * 3 + 1].tolist() == [8 - 14.0, 4 - 14.0, 8 + 17.0, 4 + 17.0]  # ratio 1: 32 x 32


@pytest.mark.parametrize("stride,sizes,shape", [(4, [32], (5, 7)), (64, [512], (2, 3)),
                                                 (16, [32, 64, 128, 256, 512], (3, 4))])
def test_anchors_match_the_op(stride, sizes, shape):
    gen = LegacyAnchorGenerator(strides=[stride], ratios=[0.5, 1.0, 2.0], sizes=[sizes])
    got = gen.grid_anchors([shape])[0].double().numpy()
    np.testing.assert_allclose(got, ref_anchors(*shape, stride, sizes, [0.5, 1.0, 2.0]), rtol=0, atol=1e-4)


# --- box coder ----------------------------------------------------------------------------
def test_decode_hand_worked_plus_one():
    coder = LegacyDeltaXYWHBBoxCoder(dwh_clamp="none", clip_border=False)
    roi = torch.tensor([[0.0, 0.0, 9.0, 9.0]])  # 10 px wide with +1
    # dw = log 2: Paddle w' = 20 around cx = 5 -> x in [-5, 14]; without +1 (w 9 around 4.5) it
    # would be [-4.5, 13.5]
    got = coder.decode(roi, torch.tensor([[0.0, 0.0, math.log(2), 0.0]]))
    torch.testing.assert_close(got, torch.tensor([[-5.0, 0.0, 14.0, 9.0]]))
    # zero deltas give the box back; a shift of 0.1 * 10 px with variance 0.1
    coder = LegacyDeltaXYWHBBoxCoder(target_stds=[0.1, 0.1, 0.2, 0.2], dwh_clamp="none", clip_border=False)
    got = coder.decode(roi, torch.tensor([[1.0, 0.0, 0.0, 0.0]]))
    torch.testing.assert_close(got, torch.tensor([[1.0, 0.0, 10.0, 9.0]]))


@pytest.mark.parametrize("clamp", ["upper", "none"])
def test_decode_matches_the_op(clamp):
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 300, (50, 2))
    rois = np.concatenate([xy, xy + rng.uniform(0, 200, (50, 2))], 1)
    deltas = rng.normal(0, 2, (50, 8))
    deltas[0, 2] = 6.0  # beyond log(1000 / 16): clamped only by generate_proposals' coder
    var = (0.1, 0.1, 0.2, 0.2) if clamp == "none" else (1, 1, 1, 1)
    coder = LegacyDeltaXYWHBBoxCoder(target_stds=var, dwh_clamp=clamp, clip_border=False)
    got = coder.decode(torch.tensor(rois), torch.tensor(deltas)).numpy()
    ref = [[v for c in range(2) for v in ref_decode(r, d[4 * c:4 * c + 4], var, clamp == "upper")]
           for r, d in zip(rois, deltas)]
    np.testing.assert_allclose(got, np.array(ref), rtol=1e-9, atol=1e-7)


def test_decode_clips_to_size_minus_one_and_encode_inverts():
    coder = LegacyDeltaXYWHBBoxCoder(dwh_clamp="none")
    got = coder.decode(torch.tensor([[0.0, 0.0, 9.0, 9.0]]), torch.tensor([[0.0, 0.0, 2.0, 2.0]]),
                       max_shape=(30.5, 40.0))
    assert got.tolist() == [[0.0, 0.0, 39.0, 29.5]]  # Paddle: min(v, size - 1), then max(v, 0)
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 100, (20, 2))
    props = torch.tensor(np.concatenate([xy, xy + rng.uniform(1, 50, (20, 2))], 1))
    gxy = xy + rng.uniform(-3, 3, (20, 2))
    gts = torch.tensor(np.concatenate([gxy, gxy + rng.uniform(0, 40, (20, 2))], 1))
    coder = LegacyDeltaXYWHBBoxCoder(target_stds=[0.1, 0.1, 0.2, 0.2], clip_border=False, dwh_clamp="none")
    torch.testing.assert_close(coder.decode(props, coder.encode(props, gts)).double(), gts, rtol=0, atol=1e-4)


# --- NMS ----------------------------------------------------------------------------------
def test_nms_offset_hand_worked():
    boxes = torch.tensor([[0.0, 0.0, 9.0, 9.0], [5.0, 0.0, 14.0, 9.0]])
    scores = torch.tensor([0.9, 0.8])
    # +1: inter 5 * 10 = 50, areas 100 -> IoU 1/3 > 0.3; plain: 36 / 126 = 0.286 <= 0.3
    assert nms(boxes, scores, 0.3, offset=1.0).tolist() == [0]
    assert nms(boxes, scores, 0.3).tolist() == [0, 1]
    # touching boxes (x2 == x1') overlap by one pixel column with +1, but disjoint ones do not
    touching = torch.tensor([[0.0, 0.0, 0.0, 9.0], [0.0, 0.0, 0.5, 9.0]])
    assert nms(touching, scores, 0.5, offset=1.0).tolist() == [0]


def test_nms_offset_matches_paddle_on_random_boxes():
    rng = np.random.default_rng(2)
    xy = rng.integers(0, 40, (300, 2)).astype(np.float32)
    boxes = np.concatenate([xy, xy + rng.integers(0, 12, (300, 2))], 1).astype(np.float32)
    scores = rng.permutation(300).astype(np.float32) / 300
    got = nms(torch.tensor(boxes), torch.tensor(scores), 0.5, offset=1.0).tolist()
    assert got == ref_nms(boxes.astype(np.float64), scores, 0.5)


def test_multiclass_nms_matches_paddle():
    rng = np.random.default_rng(3)
    num, classes = 60, 4
    xy = rng.uniform(0, 50, (num, classes, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(2, 30, (num, classes, 2))], 2).astype(np.float32)
    scores = rng.uniform(0, 1, (num, classes)).astype(np.float32)
    for nms_top_k, keep_top_k in [(-1, -1), (7, 15), (-1, 10)]:
        dets, labels = paddle_multiclass_nms(torch.tensor(boxes), torch.tensor(scores), 0.3, 0.4,
                                             nms_top_k, keep_top_k)
        ref = ref_multiclass_nms(boxes.astype(np.float64), scores, 0.3, 0.4, nms_top_k, keep_top_k)
        assert labels.tolist() == [c for _, c, _ in ref]
        np.testing.assert_array_equal(dets[:, :4].numpy(), np.array([boxes[i, c] for _, c, i in ref]))
        np.testing.assert_array_equal(dets[:, 4].numpy(), np.array([s for s, _, _ in ref], np.float32))


# --- FPN level assignment -------------------------------------------------------------------
def test_roi_levels_match_distribute_fpn_proposals():
    extractor = PaddleRoIExtractor(RoIAlign(7, 1.0, 2, aligned=False), 256, [4, 8, 16, 32])
    # a 224-px RoI with +1 widths (x2 - x1 = 223) is level 4 (index 2); MMDetection's
    # floor(log2(223 / 56)) would put it one level lower
    rois = torch.tensor([[0, 10.0, 10.0, 233.0, 233.0], [0, 10.0, 10.0, 232.0, 233.0]])
    assert extractor.map_roi_levels(rois).tolist() == [2, 1]
    rng = np.random.default_rng(4)
    xy = rng.uniform(0, 500, (400, 2))
    boxes = np.concatenate([xy, xy + np.exp(rng.uniform(0, 7, (400, 2))) - 1.5], 1).astype(np.float32)
    rois = torch.cat([torch.zeros(400, 1), torch.tensor(boxes)], 1)
    got = extractor.map_roi_levels(rois).tolist()
    assert got == [ref_level(b.astype(np.float64)) - 2 for b in boxes]


# --- proposals --------------------------------------------------------------------------------
def _paddle_rpn(strides, sizes, pre, post):
    from detzoo.models.losses import CrossEntropyLoss, L1Loss
    head = PaddleRPNHead(
        in_channels=8, feat_channels=8,
        anchor_generator=LegacyAnchorGenerator(strides=strides, ratios=[0.5, 1.0, 2.0], sizes=sizes),
        bbox_coder=LegacyDeltaXYWHBBoxCoder(dwh_clamp="upper"),
        loss_cls=CrossEntropyLoss(use_sigmoid=True), loss_bbox=L1Loss())
    cfg = dict(nms_pre=pre, max_per_level=post, max_per_img=post, nms=dict(iou_threshold=0.7), min_bbox_size=0.0)
    return head, cfg


def test_fpn_proposals_match_generate_and_collect():
    strides = [4, 8, 16]
    head, cfg = _paddle_rpn(strides, [[32], [64], [128]], pre=40, post=25)
    gen = torch.Generator().manual_seed(5)
    shapes = [(12, 16), (6, 8), (3, 4)]
    cls_scores = [torch.randn(1, 3, h, w, generator=gen) * 2 for h, w in shapes]
    bbox_preds = [torch.randn(1, 12, h, w, generator=gen) * 0.5 for h, w in shapes]
    im_info = (45.0, 61.5, 0.75)  # unrounded Paddle sizes: clip to 60.5 / 44
    meta = dict(img_shape=(45, 62, 3), scale_factor=np.float32([0.75] * 4), im_info=np.float32(im_info))
    got = head.proposals(cls_scores, bbox_preds, [meta], cfg)[0]

    collected = []
    for (h, w), stride, size, cs, bp in zip(shapes, strides, [32, 64, 128], cls_scores, bbox_preds):
        anchors = ref_anchors(h, w, stride, [size], [0.5, 1.0, 2.0])
        scores = torch.sigmoid(cs[0].permute(1, 2, 0).reshape(-1)).double().tolist()
        deltas = bp[0].permute(1, 2, 0).reshape(-1, 4).double().numpy()
        collected += ref_generate_proposals(scores, deltas, anchors, im_info, 40, 25, 0.7, 0.0)
    collected.sort(key=lambda t: -t[1])
    ref = np.array([b + [s] for b, s in collected[:25]])
    assert got.shape == ref.shape
    np.testing.assert_allclose(got.double().numpy(), ref, rtol=0, atol=2e-4)


def test_level_with_no_surviving_box_gives_a_zero_proposal():
    head, cfg = _paddle_rpn([4, 8], [[32], [64]], pre=10, post=10)
    # level 0 shrinks every box below a pixel (dw = -10: x2 = x1 + w' - 1 < x1), which FilterBoxes
    # drops (min_size 1 on x2 - x1 + 1); clipping keeps every centre inside, so only size filters
    cls_scores = [torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 1, 1)]
    bbox_preds = [torch.zeros(1, 12, 2, 2), torch.zeros(1, 12, 1, 1)]
    bbox_preds[0][:, 2::4] = -10.0
    meta = dict(img_shape=(8, 8, 3), scale_factor=np.float32([1] * 4), im_info=np.float32([8, 8, 1]))
    got = head.proposals(cls_scores, bbox_preds, [meta], cfg)[0]
    assert got.shape[0] == 2  # one box of level 1 (3 anchors, NMS), and the zero box of level 0
    assert got[-1].tolist() == [0.0, 0.0, 0.0, 0.0, 0.0]


# --- RetinaNet ---------------------------------------------------------------------------------
def ref_retinanet_output(scores, deltas, anchors, im_info, score_thr, nms_top_k, thr, keep_top_k):
    """retinanet_detection_output_op.cc on per-level [M, C] scores, [M, 4] deltas / anchors."""
    im_h, im_w, im_scale = im_info
    im_h, im_w = c_round(im_h / im_scale), c_round(im_w / im_scale)
    preds = {}
    for level, (sc, dl, an) in enumerate(zip(scores, deltas, anchors)):
        num_classes = sc.shape[1]
        threshold = score_thr if level < len(scores) - 1 else 0.0
        flat = sc.reshape(-1)
        idx = [i for i in range(flat.size) if flat[i] > threshold]
        idx.sort(key=lambda i: -flat[i])
        idx = idx[:nms_top_k] if nms_top_k > -1 else idx
        for i in idx:
            a, c = divmod(i, num_classes)
            box = ref_decode(an[a], dl[a], (1, 1, 1, 1), clamp_upper=False)
            box = [max(min(v / im_scale, (im_w if k % 2 == 0 else im_h) - 1), 0) for k, v in enumerate(box)]
            preds.setdefault(c, []).append(box + [flat[i]])
    picked = []
    for c in sorted(preds):
        dets = preds[c]
        kept = ref_nms([d[:4] for d in dets], [d[4] for d in dets], thr)
        picked += [(dets[k][4], c, dets[k][:4]) for k in kept]
    picked.sort(key=lambda t: -t[0])
    return picked[:keep_top_k]


def test_retinanet_output_matches_the_op():
    from detzoo.models.losses import FocalLoss, L1Loss
    from detzoo.models.paddle_compat import PaddleRetinaHead
    strides = [8, 16]
    head = PaddleRetinaHead(
        num_classes=3, in_channels=8, feat_channels=8, stacked_convs=0,
        anchor_generator=LegacyAnchorGenerator(strides=strides, ratios=[1.0, 2.0, 0.5], octave_base_scale=4,
                                               scales_per_octave=3),
        bbox_coder=LegacyDeltaXYWHBBoxCoder(dwh_clamp="none"), loss_cls=FocalLoss(use_sigmoid=True),
        loss_bbox=L1Loss(), test_cfg=dict(nms_pre=30, score_thr=0.3, nms=dict(iou_threshold=0.5), max_per_img=20))
    # anchors: octave sizes 4 * stride * 2 ** (i / 3), Paddle's ratio order
    # ratio 2, size 32 at stride 8: base_w = round(sqrt(64 / 2)) = 6, base_h = 12 -> 24 x 48 around 3.5
    assert head.anchor_generator.base_anchors[0][3].tolist() == [-8.0, -20.0, 15.0, 27.0]
    gen = torch.Generator().manual_seed(9)
    shapes = [(6, 8), (3, 4)]
    cls_scores = [torch.randn(1, 27, h, w, generator=gen) for h, w in shapes]
    bbox_preds = [torch.randn(1, 36, h, w, generator=gen) * 0.3 for h, w in shapes]
    im_info = (48.0, 61.5, 1.25)
    meta = dict(img_shape=(48, 62, 3), scale_factor=np.float32([1.25] * 4), im_info=np.float32(im_info))
    got = head.predict_by_feat(cls_scores, bbox_preds, [meta], rescale=True)[0]
    ref = ref_retinanet_output(
        [torch.sigmoid(c[0].permute(1, 2, 0).reshape(-1, 3)).double().numpy() for c in cls_scores],
        [b[0].permute(1, 2, 0).reshape(-1, 4).double().numpy() for b in bbox_preds],
        [a.double().numpy() for a in head.anchor_generator.grid_anchors(shapes)], im_info, 0.3, 30, 0.5, 20)
    assert got.labels.tolist() == [c for _, c, _ in ref]
    np.testing.assert_allclose(got.boxes.double().numpy(), np.array([b for _, _, b in ref]), rtol=0, atol=2e-4)
    np.testing.assert_allclose(got.scores.double().numpy(), [s for s, _, _ in ref], rtol=1e-6)


# --- YOLOv3 ---------------------------------------------------------------------------------------
def ref_yolo_box(pred, anchors, num_classes, img_h, img_w, downsample, conf_thresh):
    """yolo_box_op.h (clip_bbox, scale_x_y 1) on one image's [A * (5 + C), H, W] map ->
    boxes [A * H * W, 4], scores [A * H * W, C] in (anchor, y, x) order."""
    sig = lambda v: 1.0 / (1.0 + math.exp(-v))  # noqa: E731
    num_anchors = len(anchors)
    _, h, w = pred.shape
    pred = pred.reshape(num_anchors, 5 + num_classes, h, w)
    boxes, scores = [], []
    for a in range(num_anchors):
        for k in range(h):
            for l in range(w):  # noqa: E741
                conf = sig(pred[a, 4, k, l])
                if conf < conf_thresh:
                    boxes.append([0.0] * 4)
                    scores.append([0.0] * num_classes)
                    continue
                cx = (l + sig(pred[a, 0, k, l])) * img_w / w
                cy = (k + sig(pred[a, 1, k, l])) * img_h / h
                bw = math.exp(pred[a, 2, k, l]) * anchors[a][0] * img_w / (downsample * w)
                bh = math.exp(pred[a, 3, k, l]) * anchors[a][1] * img_h / (downsample * h)
                boxes.append([max(cx - bw / 2, 0), max(cy - bh / 2, 0),
                              min(cx + bw / 2, img_w - 1), min(cy + bh / 2, img_h - 1)])
                scores.append([conf * sig(pred[a, 5 + c, k, l]) for c in range(num_classes)])
    return np.array(boxes), np.array(scores)


def test_yolo_box_and_nms_match_the_ops():
    from detzoo.models.paddle_compat import PaddleYOLOV3Head
    from detzoo.models.task_modules import YOLOAnchorGenerator
    sizes = [[(116, 90), (156, 198), (373, 326)], [(30, 61), (62, 45), (59, 119)]]
    head = PaddleYOLOV3Head(
        num_classes=2, in_channels=[4, 4], out_channels=[4, 4], featmap_strides=[32, 16],
        anchor_generator=YOLOAnchorGenerator(strides=[32, 16], base_sizes=sizes),
        test_cfg=dict(conf_thr=0.3, score_thr=0.2, nms_top_k=8, nms=dict(iou_threshold=0.45), max_per_img=12))
    gen = torch.Generator().manual_seed(11)
    maps = [torch.randn(1, 21, 3, 4, generator=gen), torch.randn(1, 21, 6, 8, generator=gen)]
    maps[0][0, 2:4] *= 0.2
    meta = dict(ori_shape=(75, 131, 3), img_shape=(96, 128, 3), scale_factor=np.float32([128 / 131, 96 / 75] * 2))
    got = head.predict_by_feat(maps, [meta], rescale=True)[0]
    ref_boxes, ref_scores = [], []
    for pred, level_sizes, stride in zip(maps, sizes, [32, 16]):
        b, sc = ref_yolo_box(pred[0].double().numpy(), level_sizes, 2, 75, 131, stride, 0.3)
        ref_boxes.append(b)
        ref_scores.append(sc)
    boxes = np.concatenate(ref_boxes)
    scores = np.concatenate(ref_scores)
    ref = ref_multiclass_nms(boxes[:, None].repeat(2, 1), scores, 0.2, 0.45, 8, 12)
    assert len(ref) > 3 and got.labels.tolist() == [c for _, c, _ in ref]
    np.testing.assert_allclose(got.boxes.double().numpy(), np.array([boxes[i] for _, _, i in ref]), rtol=0, atol=2e-4)
    np.testing.assert_allclose(got.scores.double().numpy(), [s for s, _, _ in ref], rtol=1e-5)


def test_yolo_paddle_numerics_switches_the_head():
    from detzoo.models.paddle_compat import PaddleYOLOV3Head
    cfg, _ = _config("yolo/yolov3_darknet_270e_coco.py")
    import importlib.util
    from detzoo.zoo.configs import configs_root
    spec = importlib.util.spec_from_file_location("paddle_yolov3_base", configs_root() / "yolo/_base_/paddle_yolov3.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.paddle_yolo_numerics(cfg["model"])
    assert model["bbox_head"]["type"] is PaddleYOLOV3Head
    assert model["test_cfg"]["nms_top_k"] == 1000 and model["test_cfg"]["nms"]["iou_threshold"] == 0.45


# --- the configs ----------------------------------------------------------------------------------
def _config(name):
    from detzoo.config import instantiate, load_config
    from detzoo.zoo.configs import configs_root
    return load_config(str(configs_root() / name)), instantiate


def test_paddle_configs_use_paddle_anchors_and_proposal_settings():
    cfg, instantiate = _config("faster_rcnn/faster_rcnn_r50_vd_fpn_2x.py")
    model = cfg["model"]
    anchors = instantiate(model["rpn_head"]["anchor_generator"])
    for level, stride in enumerate([4, 8, 16, 32, 64]):
        got = anchors.grid_anchors([(2, 3)] * 5)[level].double().numpy()
        np.testing.assert_allclose(got, ref_anchors(2, 3, stride, [32 * 2 ** level], [0.5, 1.0, 2.0]), atol=1e-4)
    assert model["test_cfg"]["rpn"]["nms_pre"] == 1000 and model["test_cfg"]["rpn"]["max_per_level"] == 1000
    assert model["test_cfg"]["rcnn"]["max_per_img"] == 100
    cfg, instantiate = _config("faster_rcnn/faster_rcnn_r50_1x.py")
    anchors = instantiate(cfg["model"]["rpn_head"]["anchor_generator"])
    got = anchors.grid_anchors([(2, 2)])[0].double().numpy()
    np.testing.assert_allclose(got, ref_anchors(2, 2, 16, [32, 64, 128, 256, 512], [0.5, 1.0, 2.0]), atol=1e-4)
    assert cfg["model"]["test_cfg"]["rpn"]["nms_pre"] == 6000
    cfg, instantiate = _config("retinanet/retinanet_r50_fpn_1x.py")
    anchors = instantiate(cfg["model"]["bbox_head"]["anchor_generator"])
    sizes = [8 * 2 ** (i / 3) * 4 for i in range(3)]
    np.testing.assert_allclose(anchors.grid_anchors([(2, 2)] * 5)[0].double().numpy(),
                               ref_anchors(2, 2, 8, sizes, [1.0, 2.0, 0.5]), atol=1e-4)


# --- resize -----------------------------------------------------------------------------------
def test_paddle_resize_one_isotropic_scale():
    img = np.zeros((600, 1000, 3), np.float32)
    out = PaddleResize(target_size=800, max_size=1333)({"img": img.copy()})
    # 800 / 600 * 1000 = 1333.3 rounds to 1333, not > 1333: Paddle keeps 800 / 600 (mmcv's
    # min(1333 / 1000, 800 / 600) would pick 1.333)
    assert out["im_info"].tolist() == np.float32([800.0, 1000 * 800 / 600, 800 / 600]).tolist()
    assert out["img"].shape[:2] == (800, 1333)
    assert out["scale_factor"].tolist() == [np.float32(800 / 600)] * 4
    out = PaddleResize(target_size=800, max_size=1333)({"img": np.zeros((200, 1000, 3), np.float32)})
    assert out["im_info"][2] == np.float32(1333 / 1000) and out["img"].shape[:2] == (267, 1333)


# --- a converted Paddle R50-vd FPN Faster R-CNN -------------------------------------------------
def test_converted_faster_rcnn_top_proposal_and_detection_by_hand(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "zoo"))
    from paddle_layout import layout, random_params, write_tar

    from detzoo.apis.inference import build_test_pipeline
    from detzoo.config import load_config
    from detzoo.data.loader import collate
    from detzoo.engine.checkpoint import load_model_weights
    from detzoo.models.builder import build_detector
    from detzoo.zoo.converters import convert_file
    from detzoo.zoo.configs import configs_root

    params = random_params(layout("faster_rcnn_fpn", depth=50, vd=True), seed=7)
    tar = tmp_path / "faster_rcnn_r50_vd_fpn_2x.tar"
    write_tar(tar, params, folder="faster_rcnn_r50_vd_fpn_2x")
    cfg = load_config(str(configs_root() / "faster_rcnn/faster_rcnn_r50_vd_fpn_2x.py"))
    torch.manual_seed(0)
    model = build_detector(cfg["model"]).eval()
    load_model_weights(model, convert_file(tar, "paddle"), strict=True)

    image = (np.random.default_rng(8).uniform(0, 255, (90, 120, 3))).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "img.png"), image)
    pipeline = cfg["data"]["test"]["pipeline"]
    pipeline[1]["img_scale"] = (256, 150)  # short side 150, long side at most 256
    batch = collate([build_test_pipeline(cfg)({"filename": str(tmp_path / "img.png")})])
    meta = batch["img_metas"][0]
    im_h, im_w, im_scale = (float(v) for v in meta["im_info"])
    assert meta["img_shape"][:2] == (150, 200) and im_scale == np.float32(150 / 90)

    with torch.no_grad():
        feats = model.extract_feat(batch["img"])
        cls_scores, bbox_preds = model.rpn_head(feats)
        proposals = model.rpn_head.simple_test_rpn(feats, [meta])[0]
        result = model.predict(batch["img"], [meta], rescale=True)[0]

    # the best-scoring anchor of all levels is the first proposal: decode it by hand
    flat = [(torch.sigmoid(c[0].permute(1, 2, 0).reshape(-1)), b[0].permute(1, 2, 0).reshape(-1, 4))
            for c, b in zip(cls_scores, bbox_preds)]
    level = max(range(5), key=lambda i: float(flat[i][0].max()))
    index = int(flat[level][0].argmax())
    stride = 4 * 2 ** level
    feat_w = cls_scores[level].shape[-1]
    cell, ratio = divmod(index, 3)
    y, x = divmod(cell, feat_w)
    anchor = ref_anchors(1, 1, stride, [32 * 2 ** level], [[0.5, 1.0, 2.0][ratio]])[0] + [x * stride, y * stride] * 2
    box = ref_decode(anchor, flat[level][1][index].double().tolist(), (1, 1, 1, 1), clamp_upper=True)
    box = [min(max(v, 0), (im_w if i % 2 == 0 else im_h) - 1) for i, v in enumerate(box)]
    np.testing.assert_allclose(proposals[0, :4].double().numpy(), box, rtol=0, atol=1e-3)
    assert proposals.shape[0] <= 1000 and bool((proposals[1:, 4] <= proposals[:-1, 4]).all())

    # the top detection: the (RoI, class) pair with the best softmax score, decoded by hand in
    # original-image pixels (RoI / im_scale, variances 0.1 / 0.2, clip to ori - 1)
    with torch.no_grad():
        rois = torch.cat([proposals.new_zeros(proposals.shape[0], 1), proposals[:, :4]], 1)
        logits, deltas = model.roi_head.bbox_head(model.roi_head.bbox_roi_extractor(feats, rois))
    probs = torch.softmax(logits.double(), -1)[:, :80]
    row, cls = divmod(int(probs.argmax()), 80)
    assert float(probs[row, cls]) > 0.05 and len(result) >= 1
    roi = (proposals[row, :4].double() / im_scale).tolist()
    box = ref_decode(roi, deltas[row, 4 * cls:4 * cls + 4].double().tolist(), (0.1, 0.1, 0.2, 0.2), False)
    box = [min(max(v, 0), (120 if i % 2 == 0 else 90) - 1) for i, v in enumerate(box)]
    assert int(result.labels[0]) == cls
    np.testing.assert_allclose(result.boxes[0].double().numpy(), box, rtol=0, atol=1e-3)
    np.testing.assert_allclose(float(result.scores[0]), float(probs[row, cls]), rtol=1e-5)
    assert len(result) <= 100 and float(result.scores.min()) > 0.05
