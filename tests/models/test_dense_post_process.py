"""BaseDenseHead test-time post-processing against a loop reference written here, step by step as
MMDetection 3.x ``BaseDenseHead._predict_by_feat_single`` and ``_bbox_post_process`` do it:
per level scores (sigmoid, or softmax without the background column), the (prior, class) pairs
above score_thr, the ``nms_pre`` best of them (``sorted[:min(nms_pre, n)]``), decode; then over
all levels rescale to the original image, multiply by sigmoid score factors, drop boxes not
wider/taller than min_bbox_size, greedy NMS per class, keep max_per_img."""
import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from detzoo.models.dense_heads import BaseDenseHead
from detzoo.models.task_modules import AnchorGenerator, DeltaXYWHBBoxCoder

NUM_CLASSES = 3
RATIOS = [0.5, 1.0, 2.0]
STRIDES = [8, 16]
SIZES = [(6, 7), (3, 4)]
IMG_SHAPE = (52, 60, 3)
SCALE = (1.25, 1.5)  # (w_scale, h_scale)


class TinyHead(BaseDenseHead):
    def __init__(self, sigmoid: bool, test_cfg: dict):
        nn.Module.__init__(self)
        self.use_sigmoid_cls = sigmoid
        self.cls_out_channels = NUM_CLASSES if sigmoid else NUM_CLASSES + 1
        self.anchor_generator = AnchorGenerator(strides=STRIDES, ratios=RATIOS, scales=[3])
        self.bbox_coder = DeltaXYWHBBoxCoder()
        self.test_cfg = test_cfg

    def priors_of(self, featmap_sizes, device):
        return self.anchor_generator.grid_anchors(featmap_sizes, device=device)


def hand_anchor(stride, x, y, a):
    """Anchor a at cell (x, y): base stride * 3, h/w = ratio, centred on (x, y) * stride."""
    r = RATIOS[a]
    w, h = stride * 3 / math.sqrt(r), stride * 3 * math.sqrt(r)
    return [x * stride - w / 2, y * stride - h / 2, x * stride + w / 2, y * stride + h / 2]


def decode(anchor, d, img_h, img_w):
    px, py = (anchor[0] + anchor[2]) / 2, (anchor[1] + anchor[3]) / 2
    pw, ph = anchor[2] - anchor[0], anchor[3] - anchor[1]
    clip = abs(math.log(16 / 1000))
    dw, dh = max(-clip, min(clip, d[2])), max(-clip, min(clip, d[3]))
    gx, gy, gw, gh = px + pw * d[0], py + ph * d[1], pw * math.exp(dw), ph * math.exp(dh)
    x1, y1, x2, y2 = gx - gw / 2, gy - gh / 2, gx + gw / 2, gy + gh / 2
    return [min(max(x1, 0), img_w), min(max(y1, 0), img_h), min(max(x2, 0), img_w), min(max(y2, 0), img_h)]


def iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else math.nan  # mmcv: 0/0, which suppresses nothing


def reference(cls_maps, reg_maps, factor_maps, cfg, sigmoid, rescale=True):
    """One image. cls_maps[l] [A * C', H, W], reg_maps[l] [A * 4, H, W], factor_maps[l] [A, H, W]
    or None -> list of (score, label, box) in output order."""
    img_h, img_w = IMG_SHAPE[:2]
    num_a = len(RATIOS)
    nms_pre, score_thr = cfg.get("nms_pre", -1), cfg.get("score_thr", 0)
    cands = []  # (score, label, box, factor)
    for level, stride in enumerate(STRIDES):
        cls_map, reg_map = cls_maps[level].double(), reg_maps[level].double()
        _, fh, fw = cls_map.shape
        pairs = []
        for y in range(fh):
            for x in range(fw):
                for a in range(num_a):
                    if sigmoid:
                        probs = [1 / (1 + math.exp(-cls_map[a * NUM_CLASSES + c, y, x].item()))
                                 for c in range(NUM_CLASSES)]
                    else:
                        logits = [cls_map[a * (NUM_CLASSES + 1) + c, y, x].item() for c in range(NUM_CLASSES + 1)]
                        top = max(logits)
                        exps = [math.exp(v - top) for v in logits]
                        probs = [e / sum(exps) for e in exps[:NUM_CLASSES]]
                    for c, p in enumerate(probs):
                        if p > score_thr:
                            pairs.append((p, c, x, y, a))
        pairs.sort(key=lambda t: -t[0])
        pairs = pairs[:min(nms_pre, len(pairs))]  # literally; nms_pre=-1 drops the last pair
        for p, c, x, y, a in pairs:
            deltas = [reg_map[4 * a + k, y, x].item() for k in range(4)]
            box = decode(hand_anchor(stride, x, y, a), deltas, img_h, img_w)
            factor = None
            if factor_maps is not None:
                factor = 1 / (1 + math.exp(-factor_maps[level][a, y, x].item()))
            cands.append((p, c, box, factor))
    out = []
    for p, c, box, factor in cands:
        if rescale:
            box = [box[0] / SCALE[0], box[1] / SCALE[1], box[2] / SCALE[0], box[3] / SCALE[1]]
        if factor is not None:
            p = p * factor
        min_size = cfg.get("min_bbox_size", -1)
        if min_size >= 0 and not (box[2] - box[0] > min_size and box[3] - box[1] > min_size):
            continue
        out.append((p, c, box))
    kept = []
    for c in range(NUM_CLASSES):
        chosen = []
        for cand in sorted([o for o in out if o[1] == c], key=lambda o: -o[0]):
            if not any(iou(cand[2], k[2]) > cfg["nms"]["iou_threshold"] for k in chosen):
                chosen.append(cand)
        kept.extend(chosen)
    kept.sort(key=lambda o: -o[0])
    return kept[:cfg["max_per_img"]]


def random_maps(seed, sigmoid, batch=2, with_factors=False):
    gen = torch.Generator().manual_seed(seed)
    channels = len(RATIOS) * (NUM_CLASSES if sigmoid else NUM_CLASSES + 1)
    cls = [torch.randn(batch, channels, *s, generator=gen) * 2 - 1 for s in SIZES]
    reg = [torch.randn(batch, len(RATIOS) * 4, *s, generator=gen) * 0.5 for s in SIZES]
    factors = [torch.randn(batch, len(RATIOS), *s, generator=gen) for s in SIZES] if with_factors else None
    return cls, reg, factors


META = {"img_shape": IMG_SHAPE, "scale_factor": np.array([SCALE[0], SCALE[1]] * 2, dtype=np.float32)}


def assert_matches(det, ref):
    assert len(det) == len(ref) > 0
    assert det.scores.tolist() == pytest.approx([r[0] for r in ref], abs=1e-6)
    assert det.labels.tolist() == [r[1] for r in ref]
    assert det.boxes.flatten().tolist() == pytest.approx([v for r in ref for v in r[2]], abs=2e-4)


@pytest.mark.parametrize("sigmoid", [True, False])
@pytest.mark.parametrize("with_factors", [False, True])
@pytest.mark.parametrize("cfg", [
    dict(nms_pre=1000, score_thr=0.05, nms=dict(iou_threshold=0.5), max_per_img=100, min_bbox_size=0),
    dict(nms_pre=20, score_thr=0.1, nms=dict(iou_threshold=0.4), max_per_img=15, min_bbox_size=6),
    dict(nms_pre=8, score_thr=0.1, nms=dict(iou_threshold=0.5), max_per_img=100),  # nms_pre binds
])
def test_predict_by_feat_matches_reference(sigmoid, with_factors, cfg):
    cls, reg, factors = random_maps(7 + sigmoid + 2 * with_factors, sigmoid, with_factors=with_factors)
    head = TinyHead(sigmoid, cfg)
    results = head.predict_by_feat(cls, reg, [META, META], factors, rescale=True)
    for i, det in enumerate(results):
        ref = reference([c[i] for c in cls], [r[i] for r in reg], None if factors is None else [f[i] for f in factors],
                        cfg, sigmoid)
        assert_matches(det, ref)
    if cfg["max_per_img"] == 15:
        assert len(results[0]) == 15  # the cap is what binds in this case


def test_without_rescale_and_nms_pre_minus_one():
    # few, sparse pairs above 0.85, so the lowest one of each level would survive NMS
    cfg = dict(nms_pre=-1, score_thr=0.85, nms=dict(iou_threshold=0.6), max_per_img=50)
    cls, reg, _ = random_maps(3, True, batch=1)
    head = TinyHead(True, cfg)
    det = head.predict_single([c[0] for c in cls], [r[0] for r in reg], None,
                              head.priors_of(SIZES, "cpu"), META, rescale=False)
    assert_matches(det, reference([c[0] for c in cls], [r[0] for r in reg], None, cfg, True, rescale=False))


def test_priors_are_the_hand_anchors():
    head = TinyHead(True, {})
    priors = head.priors_of(SIZES, "cpu")
    for level, ((fh, fw), stride) in enumerate(zip(SIZES, STRIDES)):
        hand = [hand_anchor(stride, x, y, a) for y in range(fh) for x in range(fw) for a in range(len(RATIOS))]
        assert priors[level].flatten().tolist() == pytest.approx([v for b in hand for v in b], abs=1e-5)


def test_nothing_above_threshold_gives_empty_result():
    cfg = dict(nms_pre=1000, score_thr=0.05, nms=dict(iou_threshold=0.5), max_per_img=100, min_bbox_size=0)
    cls, reg, _ = random_maps(0, True, batch=1)
    det = TinyHead(True, cfg).predict_by_feat([c * 0 - 20 for c in cls], reg, [META])[0]
    assert det.boxes.shape == (0, 4) and det.scores.shape == (0,) and det.labels.shape == (0,)


def test_class_agnostic_nms_suppresses_across_classes():
    # two near-identical boxes of different classes: class-wise NMS keeps both, class-agnostic one
    cfg = dict(score_thr=0.0, nms=dict(iou_threshold=0.5, class_agnostic=True), max_per_img=10)
    head = TinyHead(True, cfg)
    boxes = torch.tensor([[0.0, 0, 10, 10], [0.5, 0, 10, 10]])
    scores, labels = torch.tensor([0.9, 0.8]), torch.tensor([0, 1])
    assert len(head.bbox_post_process(boxes, scores, labels, None, META, rescale=False)) == 1
    head.test_cfg = dict(cfg, nms=dict(iou_threshold=0.5))
    assert len(head.bbox_post_process(boxes, scores, labels, None, META, rescale=False)) == 2


def test_filter_scores_and_topk_partial_selection_equals_a_full_sort():
    from detzoo.models.dense_heads import filter_scores_and_topk

    gen = torch.Generator().manual_seed(7)
    # distinct scores: which of two tied pairs comes first is unspecified (as in the reference)
    scores = (torch.randperm(3000 * 80, generator=gen).float() / (3000 * 80)).reshape(3000, 80)
    for topk in (50, 1000, 100000, -1):
        got_scores, got_labels, got_rows = filter_scores_and_topk(scores, 0.3, topk)
        valid = (scores > 0.3).nonzero()
        flat = scores[valid[:, 0], valid[:, 1]]
        order = flat.sort(descending=True).indices[:min(topk, flat.numel())]
        assert torch.equal(got_scores, flat[order])
        assert torch.equal(got_rows, valid[order, 0]) and torch.equal(got_labels, valid[order, 1])
