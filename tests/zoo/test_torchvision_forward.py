"""A converted torchvision Faster R-CNN reproduces a forward pass recomputed here independently:
a brute-force re-implementation of torchvision's inference (anchors, RPN, RoIAlign with
aligned=False / sampling_ratio=2 sample by sample, box head, post-processing, box rescaling)
from the same features and weights, written from torchvision's source, float64, loops."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from test_torchvision_converter import LAYOUTS, build, synth_state_dict

from detzoo.zoo.converters.torchvision import convert

pytestmark = pytest.mark.skipif(not LAYOUTS.exists(), reason="torchvision layouts not available")


def iou(a, b):
    iw = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0)
    ih = max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def greedy_nms(items, thr):
    """items: list of (score, box, ...) -> kept, by decreasing score."""
    kept = []
    for item in sorted(items, key=lambda t: -t[0]):
        if all(iou(item[1], k[1]) <= thr for k in kept):
            kept.append(item)
    return kept


def decode(box, d, weights, clip_hw):
    w, h = box[2] - box[0], box[3] - box[1]
    cx, cy = box[0] + 0.5 * w, box[1] + 0.5 * h
    dx, dy = d[0] / weights[0], d[1] / weights[1]
    dw = min(d[2] / weights[2], math.log(1000 / 16))
    dh = min(d[3] / weights[3], math.log(1000 / 16))
    px, py, pw, ph = dx * w + cx, dy * h + cy, math.exp(dw) * w, math.exp(dh) * h
    out = [px - pw / 2, py - ph / 2, px + pw / 2, py + ph / 2]
    H, W = clip_hw
    return [min(max(out[0], 0), W), min(max(out[1], 0), H), min(max(out[2], 0), W), min(max(out[3], 0), H)]


def bilinear(feat, y, x):
    """torchvision roi_align's bilinear_interpolate (aligned=False) on feat [C, H, W]."""
    C, H, W = feat.shape
    if y < -1.0 or y > H or x < -1.0 or x > W:
        return torch.zeros(C, dtype=feat.dtype)
    y, x = max(y, 0.0), max(x, 0.0)
    y0, x0 = int(y), int(x)
    if y0 >= H - 1:
        y0 = y1 = H - 1
        y = float(y0)
    else:
        y1 = y0 + 1
    if x0 >= W - 1:
        x0 = x1 = W - 1
        x = float(x0)
    else:
        x1 = x0 + 1
    ly, lx = y - y0, x - x0
    return ((1 - ly) * (1 - lx) * feat[:, y0, x0] + (1 - ly) * lx * feat[:, y0, x1]
            + ly * (1 - lx) * feat[:, y1, x0] + ly * lx * feat[:, y1, x1])


def roi_align_brute(feat, box, scale, out=7, sampling=2):
    x1, y1, x2, y2 = [c * scale for c in box]
    rw, rh = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    bw, bh = rw / out, rh / out
    result = torch.zeros(feat.shape[0], out, out, dtype=feat.dtype)
    for ph in range(out):
        for pw in range(out):
            acc = torch.zeros(feat.shape[0], dtype=feat.dtype)
            for iy in range(sampling):
                for ix in range(sampling):
                    y = y1 + ph * bh + (iy + 0.5) * bh / sampling
                    x = x1 + pw * bw + (ix + 0.5) * bw / sampling
                    acc += bilinear(feat, y, x)
            result[:, ph, pw] = acc / (sampling * sampling)
    return result


def reference_faster_rcnn(sd, feats, pad_hw, img_hw, ori_hw, rpn_pre, rpn_post, score_thr, max_det):
    """torchvision FasterRCNN.eval() after the backbone, re-implemented by brute force."""
    f64 = {k: v.double() for k, v in sd.items()}
    proposals = []
    sizes = [32, 64, 128, 256, 512]
    for level, feat in enumerate(feats):
        feat = feat.double()
        t = F.relu(F.conv2d(feat, f64["rpn.head.conv.0.0.weight"], f64["rpn.head.conv.0.0.bias"], padding=1))
        logits = F.conv2d(t, f64["rpn.head.cls_logits.weight"], f64["rpn.head.cls_logits.bias"])[0]  # [A, h, w]
        deltas = F.conv2d(t, f64["rpn.head.bbox_pred.weight"], f64["rpn.head.bbox_pred.bias"])[0]   # [4A, h, w]
        h, w = logits.shape[1:]
        stride_y, stride_x = pad_hw[0] // h, pad_hw[1] // w
        cands = []
        for y in range(h):
            for x in range(w):
                for a, r in enumerate((0.5, 1.0, 2.0)):
                    hr = math.sqrt(r)
                    bw, bh = sizes[level] / hr, sizes[level] * hr
                    base = [round(-bw / 2), round(-bh / 2), round(bw / 2), round(bh / 2)]
                    anchor = [base[0] + x * stride_x, base[1] + y * stride_y, base[2] + x * stride_x,
                              base[3] + y * stride_y]
                    cands.append((float(logits[a, y, x]), anchor, deltas[4 * a:4 * a + 4, y, x].tolist()))
        cands = sorted(cands, key=lambda c: -c[0])[:rpn_pre]
        boxes = [(1 / (1 + math.exp(-c[0])), decode(c[1], c[2], (1, 1, 1, 1), img_hw)) for c in cands]
        boxes = [b for b in boxes if b[1][2] - b[1][0] >= 1e-3 and b[1][3] - b[1][1] >= 1e-3]
        proposals += greedy_nms(boxes, 0.7)
    proposals = sorted(proposals, key=lambda p: -p[0])[:rpn_post]

    dets = []
    for _, box in proposals:
        area = (box[2] - box[0]) * (box[3] - box[1])
        k = min(max(math.floor(4 + math.log2(math.sqrt(area) / 224) + 1e-6), 2), 5)
        pooled = roi_align_brute(feats[k - 2][0].double(), box, 1.0 / 2 ** k)
        x = F.relu(pooled.reshape(1, -1) @ f64["roi_heads.box_head.fc6.weight"].T + f64["roi_heads.box_head.fc6.bias"])
        x = F.relu(x @ f64["roi_heads.box_head.fc7.weight"].T + f64["roi_heads.box_head.fc7.bias"])
        scores = torch.softmax(x @ f64["roi_heads.box_predictor.cls_score.weight"].T
                               + f64["roi_heads.box_predictor.cls_score.bias"], -1)[0]
        reg = (x @ f64["roi_heads.box_predictor.bbox_pred.weight"].T + f64["roi_heads.box_predictor.bbox_pred.bias"])[0]
        for c in range(1, 91):
            b = decode(box, reg[4 * c:4 * c + 4].tolist(), (10, 10, 5, 5), img_hw)
            if scores[c] > score_thr and b[2] - b[0] >= 1e-2 and b[3] - b[1] >= 1e-2:
                dets.append((float(scores[c]), b, c))
    kept = []
    for c in range(1, 91):
        kept += greedy_nms([d for d in dets if d[2] == c], 0.5)
    kept = sorted(kept, key=lambda d: -d[0])[:max_det]
    ry, rx = ori_hw[0] / img_hw[0], ori_hw[1] / img_hw[1]
    return [(s, [b[0] * rx, b[1] * ry, b[2] * rx, b[3] * ry], c) for s, b, c in kept]


def test_faster_rcnn_matches_brute_force():
    from detzoo.data.loader import collate
    from detzoo.data.transforms import Collect, Compose, DefaultFormatBundle, Pad
    from detzoo.data.transforms.torchvision_transform import TorchvisionResizeNormalize

    torch.manual_seed(0)
    sd = synth_state_dict("fasterrcnn_resnet50_fpn", seed=1, std=0.05)
    model = build("fasterrcnn_resnet50_fpn")
    model.load_state_dict(convert(sd)["state_dict"], strict=True)
    rpn_pre, rpn_post, score_thr, max_det = 40, 12, 0.0, 100
    model.rpn_head.test_cfg.update(nms_pre=rpn_pre, max_per_img=rpn_post)
    model.roi_head.test_cfg.update(score_thr=score_thr, max_per_img=max_det)

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (48, 61, 3), dtype=np.uint8)
    pipeline = Compose([dict(type=TorchvisionResizeNormalize, min_size=64, max_size=100),
                        dict(type=Pad, size_divisor=32), dict(type=DefaultFormatBundle),
                        dict(type=Collect, keys=["img"])])
    batch = collate([pipeline({"img": img, "ori_shape": img.shape, "filename": "x"})])
    meta = batch["img_metas"][0]
    assert meta["img_shape"][:2] == (64, 81) and tuple(batch["img"].shape[-2:]) == (64, 96)

    with torch.no_grad():
        result = model.predict(batch["img"], batch["img_metas"])[0]
        feats = model.extract_feat(batch["img"])
    expected = reference_faster_rcnn(sd, feats, (64, 96), (64, 81), (48, 61), rpn_pre, rpn_post, score_thr, max_det)
    assert len(expected) > 20
    assert len(result) == len(expected)
    order = torch.argsort(result.scores, descending=True)
    np.testing.assert_allclose(result.scores[order].numpy(), [e[0] for e in expected], rtol=1e-4, atol=1e-6)
    assert result.labels[order].tolist() == [e[2] for e in expected]
    np.testing.assert_allclose(result.boxes[order].numpy(), np.array([e[1] for e in expected]), atol=2e-3)
    assert (result.boxes[:, 2] <= 61 + 1e-4).all() and (result.boxes[:, 3] <= 48 + 1e-4).all()


def paste_brute(mask, box, im_h, im_w):
    """torchvision paste_mask_in_image after expand_masks(padding=1) / expand_boxes, pixel by pixel."""
    M = mask.shape[-1]
    padded = np.pad(mask, 1)
    scale = (M + 2) / M
    cx, cy = (box[0] + box[2]) * 0.5, (box[1] + box[3]) * 0.5
    wh, hh = (box[2] - box[0]) * 0.5 * scale, (box[3] - box[1]) * 0.5 * scale
    x0, y0, x1, y1 = [int(v) for v in (cx - wh, cy - hh, cx + wh, cy + hh)]  # truncation, as .to(int64)
    w, h = max(x1 - x0 + 1, 1), max(y1 - y0 + 1, 1)
    out = np.zeros((im_h, im_w))
    S = M + 2
    for yy in range(max(y0, 0), min(y1 + 1, im_h)):
        for xx in range(max(x0, 0), min(x1 + 1, im_w)):
            sy = max((yy - y0 + 0.5) * S / h - 0.5, 0.0)
            sx = max((xx - x0 + 0.5) * S / w - 0.5, 0.0)
            a, b = int(sy), int(sx)
            a1, b1 = min(a + 1, S - 1), min(b + 1, S - 1)
            ly, lx = sy - a, sx - b
            out[yy, xx] = ((1 - ly) * ((1 - lx) * padded[a, b] + lx * padded[a, b1])
                           + ly * ((1 - lx) * padded[a1, b] + lx * padded[a1, b1]))
    return out


def test_mask_paste_matches_brute_force():
    from detzoo.models.torchvision_compat import paste_masks_torchvision

    rng = np.random.default_rng(3)
    masks = rng.random((4, 6, 6)).astype(np.float32)
    boxes = np.array([[3.3, 4.9, 17.2, 12.0], [-4.0, -2.5, 6.0, 7.7], [20.0, 10.0, 31.9, 23.5], [8, 8, 8.2, 8.4]],
                     np.float32)
    got = paste_masks_torchvision(torch.from_numpy(masks), torch.from_numpy(boxes), 22, 30).numpy()
    for i in range(4):
        np.testing.assert_allclose(got[i], paste_brute(masks[i], boxes[i].tolist(), 22, 30), atol=1e-5)


def test_mask_rcnn_masks_match_brute_force():
    from detzoo.data.loader import collate
    from detzoo.data.transforms import Collect, Compose, DefaultFormatBundle, Pad
    from detzoo.data.transforms.torchvision_transform import TorchvisionResizeNormalize

    sd = synth_state_dict("maskrcnn_resnet50_fpn", seed=2, std=0.05)
    model = build("maskrcnn_resnet50_fpn")
    model.load_state_dict(convert(sd)["state_dict"], strict=True)
    model.rpn_head.test_cfg.update(nms_pre=40, max_per_img=12)
    model.roi_head.test_cfg.update(score_thr=0.0, max_per_img=4, mask_thr_binary=-1)  # probabilities
    img = np.random.default_rng(1).integers(0, 256, (48, 61, 3), dtype=np.uint8)
    pipeline = Compose([dict(type=TorchvisionResizeNormalize, min_size=64, max_size=100),
                        dict(type=Pad, size_divisor=32), dict(type=DefaultFormatBundle),
                        dict(type=Collect, keys=["img"])])
    batch = collate([pipeline({"img": img, "ori_shape": img.shape, "filename": "x"})])
    with torch.no_grad():
        result = model.predict(batch["img"], batch["img_metas"])[0]
        feats = model.extract_feat(batch["img"])
    assert len(result) == 4 and result.masks.shape == (4, 48, 61)
    f64 = {k: v.double() for k, v in sd.items()}
    ry, rx = 48 / 64, 61 / 81
    for box, label, mask in zip(result.boxes.tolist(), result.labels.tolist(), result.masks):
        # the mask RoI is the detection in network-input pixels (before rescaling)
        roi = [box[0] / rx, box[1] / ry, box[2] / rx, box[3] / ry]
        area = (roi[2] - roi[0]) * (roi[3] - roi[1])
        k = min(max(math.floor(4 + math.log2(math.sqrt(area) / 224) + 1e-6), 2), 5)
        x = roi_align_brute(feats[k - 2][0].double(), roi, 1.0 / 2 ** k, out=14)[None]
        for i in range(4):
            x = F.relu(F.conv2d(x, f64[f"roi_heads.mask_head.{i}.0.weight"], f64[f"roi_heads.mask_head.{i}.0.bias"],
                                padding=1))
        x = F.relu(F.conv_transpose2d(x, f64["roi_heads.mask_predictor.conv5_mask.weight"],
                                      f64["roi_heads.mask_predictor.conv5_mask.bias"], stride=2))
        logits = F.conv2d(x, f64["roi_heads.mask_predictor.mask_fcn_logits.weight"],
                          f64["roi_heads.mask_predictor.mask_fcn_logits.bias"])[0, label]
        expected = paste_brute(torch.sigmoid(logits).numpy(), box, 48, 61)
        np.testing.assert_allclose(mask.numpy(), expected, atol=1e-5)
