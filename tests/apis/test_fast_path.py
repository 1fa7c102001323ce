"""The inference fast path (detzoo.apis.fast_path) against the plain float32 model, and the exact
early exit of multiclass_nms it relies on, against brute-force references written here."""
import copy

import numpy as np
import pytest
import torch

from detzoo.apis import init_detector
from detzoo.apis.fast_path import (device_has_native_bf16, inference_autocast, is_optimized,
                                   optimize_for_inference)
from detzoo.errors import ConfigError
from detzoo.ops import multiclass_nms

H, W = 256, 384  # small input: the test is about agreement, not speed


def _iou(a, b):
    """Brute-force IoU of two xyxy boxes (python floats)."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _matched(ref, other, iou_thr=0.9):
    """Share of ``ref``'s detections with a same-label detection of ``other`` at IoU >= thr."""
    hits = 0
    for box, label in zip(ref.boxes.tolist(), ref.labels.tolist()):
        hits += any(lab == label and _iou(box, b) >= iou_thr
                    for b, lab in zip(other.boxes.tolist(), other.labels.tolist()))
    return hits / max(len(ref), 1)


@pytest.fixture(scope="module")
def detector_and_batch():
    torch.manual_seed(0)
    model = init_detector("faster_rcnn_r50_fpn_1x_coco", device="cpu",
                          cfg_options={"model.test_cfg.rcnn.score_thr": 0.0})
    # a classifier whose scores spread like a trained model's (N(0, 0.01) weights give
    # near-uniform scores, whose top 100 any rounding reshuffles)
    with torch.no_grad():
        torch.nn.init.normal_(model.roi_head.bbox_head.fc_cls.weight, std=0.2)
        torch.nn.init.normal_(model.roi_head.bbox_head.fc_reg.weight, std=0.01)
    img = torch.randn(1, 3, H, W, generator=torch.Generator().manual_seed(1))
    meta = dict(filename="random.jpg", img_id=0, ori_shape=(H, W, 3), img_shape=(H, W, 3),
                pad_shape=(H, W, 3), scale_factor=np.ones(4, dtype=np.float32), flip=False,
                flip_direction=None)
    with torch.inference_mode():
        reference = model.predict(img, [meta])[0]
    assert len(reference) == 100
    return model, img, [meta], reference


def _predict(model, img, metas):
    with torch.inference_mode(), inference_autocast(model):
        return model.predict(img, metas)[0]


def test_fast_path_keeps_detections(detector_and_batch):
    model, img, metas, reference = detector_and_batch
    fast = optimize_for_inference(copy.deepcopy(model))
    assert is_optimized(fast) and not is_optimized(model)
    result = _predict(fast, img, metas)
    assert result.boxes.dtype == torch.float32 and result.scores.dtype == torch.float32
    assert _matched(reference, result) >= 0.95 and _matched(result, reference) >= 0.95
    if device_has_native_bf16(torch.device("cpu")):
        # bf16 really ran (otherwise this test would only compare float32 with itself)
        assert fast._detzoo_fast_path.dtype == torch.bfloat16
        assert not torch.equal(result.boxes, reference.boxes) or not torch.equal(result.scores, reference.scores)


def test_fast_path_without_bf16_is_float_noise(detector_and_batch):
    model, img, metas, reference = detector_and_batch
    exact = optimize_for_inference(copy.deepcopy(model), bf16=False)
    result = _predict(exact, img, metas)
    assert torch.equal(result.labels, reference.labels)
    torch.testing.assert_close(result.boxes, reference.boxes, atol=1e-3, rtol=0)
    torch.testing.assert_close(result.scores, reference.scores, atol=1e-5, rtol=1e-4)


def test_outside_the_context_an_optimized_model_is_float32(detector_and_batch):
    model, img, metas, reference = detector_and_batch
    fast = optimize_for_inference(copy.deepcopy(model))
    with torch.inference_mode():
        result = fast.predict(img, metas)[0]
    assert torch.equal(result.labels, reference.labels)
    torch.testing.assert_close(result.boxes, reference.boxes, atol=1e-3, rtol=0)


def test_autocast_state_restored_after_an_error(detector_and_batch):
    model, img, metas, _ = detector_and_batch
    fast = optimize_for_inference(copy.deepcopy(model), regions=["backbone", "neck"])
    bad = torch.zeros(1, 4, H, W)  # 4 channels: the stem conv raises inside the backbone region
    with pytest.raises(RuntimeError):
        with torch.inference_mode(), inference_autocast(fast):
            fast.predict(bad, metas)
    assert not torch.is_autocast_enabled("cpu")
    assert fast._detzoo_fast_path.open_contexts == []


def test_unknown_region_and_unsupported_bf16_are_clear_errors(detector_and_batch, monkeypatch):
    model = detector_and_batch[0]
    with pytest.raises(ConfigError, match="no module 'backbone.layer9'"):
        optimize_for_inference(copy.deepcopy(model), regions=["backbone.layer9"])
    import detzoo.apis.fast_path as fast_path

    monkeypatch.setattr(fast_path, "device_has_native_bf16", lambda device: False)
    with pytest.raises(ConfigError, match="no native bf16"):
        optimize_for_inference(copy.deepcopy(model), bf16=True)


def _greedy_multiclass(boxes, scores, thr, max_num):
    """Reference: per class, greedy NMS in (score desc, index asc) order; then all kept sorted
    the same way and cut to max_num. Returns the kept (row, class) pairs in order."""
    rows, classes = len(scores), len(scores[0])
    cands = sorted(((-scores[r][c], r * classes + c, r, c) for r in range(rows) for c in range(classes)))
    kept = []
    for _, _, r, c in cands:
        box = boxes[r][4 * c:4 * c + 4]
        if all(kc != c or _iou(box, boxes[kr][4 * kc:4 * kc + 4]) <= thr for kr, kc in kept):
            kept.append((r, c))
    return kept[:max_num]


@pytest.mark.parametrize("seed,max_num", [(0, 5), (1, 30), (2, 200)])
def test_multiclass_nms_max_num_matches_bruteforce(seed, max_num):
    g = torch.Generator().manual_seed(seed)
    rows, classes = 120, 6
    xy = torch.rand(rows, classes, 2, generator=g) * 60
    wh = 5 + torch.rand(rows, classes, 2, generator=g) * 40
    boxes = torch.cat([xy, xy + wh], dim=2).reshape(rows, 4 * classes)
    scores = torch.rand(rows, classes + 1, generator=g)
    scores[:, :classes] = (scores[:, :classes] * 8).round() / 8 + 0.01  # many ties
    dets, labels = multiclass_nms(boxes, scores, 0.0, 0.5, max_num)
    expected = _greedy_multiclass(boxes.tolist(), scores[:, :classes].tolist(), 0.5, max_num)
    assert labels.tolist() == [c for _, c in expected]
    assert dets[:, :4].tolist() == [boxes[r, 4 * c:4 * c + 4].tolist() for r, c in expected]
