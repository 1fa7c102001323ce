"""Faster R-CNN: checkpoint layout, strict loading, and the box head's post-processing against a
slow reference written here."""
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from detzoo.config import load_config
from detzoo.engine.checkpoint import load_model_weights
from detzoo.models.builder import build_detector

from shared_paths import MMDET_LAYOUTS as LAYOUTS


def layout(name):
    path = LAYOUTS / f"{name}.json"
    if not path.is_file():
        pytest.fail(f"checkpoint layout {path} is missing (shared/ must sit beside the checkout)")
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def faster_rcnn():
    return build_detector(load_config("faster_rcnn_r50_fpn_1x_coco")["model"])


def test_state_dict_matches_mmdetection_layout(faster_rcnn):
    ref = {k: tuple(shape) for k, shape in layout("faster-rcnn_r50_fpn_1x_coco")["layout"]}
    mine = {k: tuple(v.shape) for k, v in faster_rcnn.state_dict().items()}
    assert sorted(mine) == sorted(ref)
    assert mine == ref


def test_layout_state_dict_loads_strictly_and_is_used(faster_rcnn, tmp_path):
    info = layout("faster-rcnn_r50_fpn_1x_coco")
    gen = torch.Generator().manual_seed(0)
    state = {}
    for key, shape in info["layout"]:
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=gen) + 0.5
        else:
            state[key] = torch.randn(shape, generator=gen) * 0.01
    path = tmp_path / "mmdet_style.pth"
    torch.save({"meta": {"CLASSES": [f"c{i}" for i in range(80)]}, "state_dict": state}, path)
    load_model_weights(faster_rcnn, str(path), strict=True)
    for key, value in faster_rcnn.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_test_cfg_matches_reference_record():
    cfg = load_config("faster_rcnn_r50_fpn_1x_coco")
    ref = layout("faster-rcnn_r50_fpn_1x_coco")["test_cfg"]
    assert cfg.model.test_cfg.rpn.nms_pre == ref["rpn"]["nms_pre"]
    assert cfg.model.test_cfg.rpn.max_per_img == ref["rpn"]["max_per_img"]
    assert cfg.model.test_cfg.rpn.nms.iou_threshold == ref["rpn"]["nms"]["iou_threshold"]
    assert cfg.model.test_cfg.rcnn.score_thr == ref["rcnn"]["score_thr"]
    assert cfg.model.test_cfg.rcnn.nms.iou_threshold == ref["rcnn"]["nms"]["iou_threshold"]
    assert cfg.model.test_cfg.rcnn.max_per_img == ref["rcnn"]["max_per_img"]


def _iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def reference_rcnn_postprocess(rois, cls_score, deltas, img_shape, scale, stds, score_thr, iou_thr, max_num):
    """MMDetection's box-head test path, one box and one class at a time (float64)."""
    h, w = img_shape
    num_classes = cls_score.shape[1] - 1
    probs = torch.softmax(cls_score.double(), dim=1).tolist()
    candidates = []
    for i, roi in enumerate(rois.double().tolist()):
        px, py = (roi[0] + roi[2]) / 2, (roi[1] + roi[3]) / 2
        pw, ph = roi[2] - roi[0], roi[3] - roi[1]
        for c in range(num_classes):
            if probs[i][c] <= score_thr:
                continue
            dx, dy, dw, dh = [deltas[i, 4 * c + k].item() * stds[k] for k in range(4)]
            clip = abs(math.log(16 / 1000))
            dw, dh = max(-clip, min(clip, dw)), max(-clip, min(clip, dh))
            gx, gy, gw, gh = px + pw * dx, py + ph * dy, pw * math.exp(dw), ph * math.exp(dh)
            box = [min(max(gx - gw / 2, 0), w), min(max(gy - gh / 2, 0), h),
                   min(max(gx + gw / 2, 0), w), min(max(gy + gh / 2, 0), h)]
            box = [box[0] / scale[0], box[1] / scale[1], box[2] / scale[0], box[3] / scale[1]]
            candidates.append((probs[i][c], c, box))
    kept = []
    for c in range(num_classes):
        cls_cands = sorted([x for x in candidates if x[1] == c], key=lambda x: -x[0])
        chosen = []
        for cand in cls_cands:
            if all(_iou(cand[2], k[2]) <= iou_thr for k in chosen):
                chosen.append(cand)
        kept.extend(chosen)
    kept.sort(key=lambda x: -x[0])
    return kept[:max_num]


@pytest.mark.parametrize("seed", [0, 1])
def test_box_head_postprocess_matches_reference(faster_rcnn, seed):
    head = faster_rcnn.roi_head.bbox_head
    gen = torch.Generator().manual_seed(seed)
    n = 60
    xy = torch.rand(n, 2, generator=gen) * 300
    rois = torch.cat([torch.zeros(n, 1), xy, xy + 10 + torch.rand(n, 2, generator=gen) * 200], dim=1)
    cls_score = torch.randn(n, 81, generator=gen) * 3
    deltas = torch.randn(n, 320, generator=gen)
    meta = {"img_shape": (400, 500, 3), "scale_factor": np.array([1.25, 1.3, 1.25, 1.3], dtype=np.float32)}
    cfg = {"score_thr": 0.05, "nms": {"iou_threshold": 0.5}, "max_per_img": 100}
    det = head.predict_single(rois, cls_score, deltas, meta, cfg, rescale=True)
    ref = reference_rcnn_postprocess(rois[:, 1:], cls_score, deltas, (400, 500), (1.25, 1.3),
                                     (0.1, 0.1, 0.2, 0.2), 0.05, 0.5, 100)
    assert len(det) == len(ref) > 0
    assert det.scores.tolist() == pytest.approx([r[0] for r in ref], abs=1e-5)
    assert det.labels.tolist() == [r[1] for r in ref]
    assert det.boxes.flatten().tolist() == pytest.approx([v for r in ref for v in r[2]], abs=1e-3)


def reference_rpn_proposals(cls_scores, bbox_preds, strides, img_shape, nms_pre, iou_thr, max_num):
    """RPN test-time proposals from per-level maps of one image, written out with loops."""
    h, w = img_shape
    ratios, scale = [0.5, 1.0, 2.0], 8
    cands = []
    for level, (cls, reg, stride) in enumerate(zip(cls_scores, bbox_preds, strides)):
        num_a, fh, fw = cls.shape
        level_cands = []
        for y in range(fh):
            for x in range(fw):
                for a in range(num_a):
                    r = ratios[a]
                    aw, ah = stride * scale / math.sqrt(r), stride * scale * math.sqrt(r)
                    anchor = [x * stride - aw / 2, y * stride - ah / 2, x * stride + aw / 2, y * stride + ah / 2]
                    score = 1 / (1 + math.exp(-cls[a, y, x].item()))
                    level_cands.append((score, anchor, [reg[4 * a + k, y, x].item() for k in range(4)]))
        level_cands.sort(key=lambda c: -c[0])
        for score, anchor, d in level_cands[:nms_pre]:
            px, py = (anchor[0] + anchor[2]) / 2, (anchor[1] + anchor[3]) / 2
            pw, ph = anchor[2] - anchor[0], anchor[3] - anchor[1]
            clip = abs(math.log(16 / 1000))
            dw, dh = max(-clip, min(clip, d[2])), max(-clip, min(clip, d[3]))
            gx, gy, gw, gh = px + pw * d[0], py + ph * d[1], pw * math.exp(dw), ph * math.exp(dh)
            box = [min(max(gx - gw / 2, 0), w), min(max(gy - gh / 2, 0), h),
                   min(max(gx + gw / 2, 0), w), min(max(gy + gh / 2, 0), h)]
            if box[2] - box[0] > 0 and box[3] - box[1] > 0:
                cands.append((score, level, box))
    kept = []
    for level in range(len(strides)):
        chosen = []
        for cand in sorted([c for c in cands if c[1] == level], key=lambda c: -c[0]):
            if all(_iou(cand[2], k[2]) <= iou_thr for k in chosen):
                chosen.append(cand)
        kept.extend(chosen)
    kept.sort(key=lambda c: -c[0])
    return kept[:max_num]


def test_rpn_proposals_match_reference(faster_rcnn):
    head = faster_rcnn.rpn_head
    gen = torch.Generator().manual_seed(3)
    sizes, strides = [(6, 8), (3, 4)], [4, 8]
    cls_scores = [torch.randn(1, 3, *s, generator=gen) * 2 for s in sizes]
    bbox_preds = [torch.randn(1, 12, *s, generator=gen) * 0.3 for s in sizes]
    original = head.anchor_generator
    head.anchor_generator = type(original)(strides=strides, ratios=[0.5, 1.0, 2.0], scales=[8])
    try:
        cfg = {"nms_pre": 50, "max_per_img": 40, "nms": {"iou_threshold": 0.7}, "min_bbox_size": 0}
        props = head.proposals(cls_scores, bbox_preds, [{"img_shape": (24, 32, 3)}], cfg)[0]
    finally:
        head.anchor_generator = original
    ref = reference_rpn_proposals([c[0] for c in cls_scores], [b[0] for b in bbox_preds], strides, (24, 32),
                                  50, 0.7, 40)
    assert props.shape[0] == len(ref) > 5
    assert props[:, 4].tolist() == pytest.approx([r[0] for r in ref], abs=1e-6)
    assert props[:, :4].flatten().tolist() == pytest.approx([v for r in ref for v in r[2]], abs=1e-4)
