"""torchvision RetinaNet / FCOS post-processing against brute-force re-implementations written from
torchvision's ``postprocess_detections`` (loops, float64), on random head outputs of a 64x96 batch
whose real image is 60x81 (so clipping, the P6/P7 stride quirk and rescaling all matter)."""
import math

import numpy as np
import pytest
import torch

from test_torchvision_converter import build
from test_torchvision_forward import decode, greedy_nms

PAD_HW, IMG_HW, ORI_HW = (64, 96), (60, 81), (45, 61)
META = dict(img_shape=IMG_HW + (3,), ori_shape=ORI_HW + (3,), pad_shape=PAD_HW + (3,),
            scale_factor=np.array([81 / 61, 60 / 45] * 2, np.float32))
SIZES = [(8, 12), (4, 6), (2, 3), (1, 2), (1, 1)]  # P3..P7 of a 64x96 batch


def rescale(box):
    ry, rx = ORI_HW[0] / IMG_HW[0], ORI_HW[1] / IMG_HW[1]
    return [box[0] * rx, box[1] * ry, box[2] * rx, box[3] * ry]


def check(result, expected):
    assert len(expected) > 5 and len(result) == len(expected)
    order = torch.argsort(result.scores, descending=True)
    np.testing.assert_allclose(result.scores[order].numpy(), [e[0] for e in expected], rtol=1e-5)
    assert result.labels[order].tolist() == [e[2] for e in expected]
    np.testing.assert_allclose(result.boxes[order].numpy(), np.array([rescale(e[1]) for e in expected]),
                               atol=1e-3)


def class_nms(dets, thr, max_det):
    kept = []
    for c in sorted({d[2] for d in dets}):
        kept += greedy_nms([d for d in dets if d[2] == c], thr)
    return sorted(kept, key=lambda d: -d[0])[:max_det]


def test_retinanet_postprocess_brute_force():
    # a 96x160 batch: P6 is 2x3 (strides 48 in y, 53 in x) and P7 1x2 (stride 80 in x)
    pad_hw, img_hw, ori_hw = (96, 160), (90, 150), (60, 100)
    sizes_hw = [(12, 20), (6, 10), (3, 5), (2, 3), (1, 2)]
    meta = dict(img_shape=img_hw + (3,), ori_shape=ori_hw + (3,), pad_shape=pad_hw + (3,),
                scale_factor=np.array([1.5] * 4, np.float32))
    head = build("retinanet_resnet50_fpn").bbox_head
    head.test_cfg.update(score_thr=0.3, nms_pre=50, max_per_img=300)
    gen = torch.Generator().manual_seed(0)
    cls = [torch.randn(1, 9 * 91, h, w, generator=gen) - 1.0 for h, w in sizes_hw]
    reg = []
    for h, w in sizes_hw:  # small boxes (dw, dh around -2) so that large anchors are not all clipped
        d = torch.randn(1, 9, 4, h, w, generator=gen) * 0.5
        d[:, :, 2:] = d[:, :, 2:] * 0.6 - 2.0
        reg.append(d.reshape(1, 36, h, w))
    result = head.predict_by_feat(cls, reg, [meta])[0]

    dets = []
    for level, (h, w) in enumerate(sizes_hw):
        x = 32 * 2 ** level
        sizes = (x, int(x * 2 ** (1 / 3)), int(x * 2 ** (2 / 3)))
        stride_y, stride_x = pad_hw[0] // h, pad_hw[1] // w
        probs = 1 / (1 + np.exp(-cls[level][0].double().numpy()))  # [9 * 91, h, w]
        deltas = reg[level][0].double().numpy()
        cands = []
        for k, yy, xx in np.argwhere(probs > 0.3):
            a, c = divmod(int(k), 91)
            r, s = (0.5, 1.0, 2.0)[a // 3], sizes[a % 3]
            bw, bh = s / math.sqrt(r), s * math.sqrt(r)
            anchor = [round(-bw / 2) + xx * stride_x, round(-bh / 2) + yy * stride_y,
                      round(bw / 2) + xx * stride_x, round(bh / 2) + yy * stride_y]
            cands.append((float(probs[k, yy, xx]), anchor, c, deltas[4 * a:4 * a + 4, yy, xx].tolist(),
                          level >= 3 and (yy > 0 or xx > 0)))
        cands = sorted(cands, key=lambda t: -t[0])[:50]
        dets += [(s, decode(anc, d, (1, 1, 1, 1), img_hw), c, quirk) for s, anc, c, d, quirk in cands]
    expected = class_nms(dets, 0.5, 300)
    assert sum(e[3] for e in expected) >= 3  # detections from P6/P7 cells whose stride is not 64/128
    assert len(expected) > 5 and len(result) == len(expected)
    order = torch.argsort(result.scores, descending=True)
    np.testing.assert_allclose(result.scores[order].numpy(), [e[0] for e in expected], rtol=1e-5)
    assert result.labels[order].tolist() == [e[2] for e in expected]
    ry, rx = ori_hw[0] / img_hw[0], ori_hw[1] / img_hw[1]
    boxes = [[b[0] * rx, b[1] * ry, b[2] * rx, b[3] * ry] for _, b, _, _ in expected]
    np.testing.assert_allclose(result.boxes[order].numpy(), np.array(boxes), atol=1e-3)


def test_fcos_postprocess_brute_force():
    head = build("fcos_resnet50_fpn").bbox_head
    head.test_cfg.update(score_thr=0.25, nms_pre=30, max_per_img=50)
    gen = torch.Generator().manual_seed(1)
    cls = [torch.randn(1, 91, h, w, generator=gen) - 1.0 for h, w in SIZES]
    ctr = [torch.randn(1, 1, h, w, generator=gen) for h, w in SIZES]
    # bbox_preds as the head's forward returns them at test time: relu(reg) * anchor size
    dist = [torch.rand(1, 4, h, w, generator=gen) * 4 * 8 * 2 ** level for level, (h, w) in enumerate(SIZES)]
    result = head.predict_by_feat(cls, dist, [META], score_factors=ctr)[0]

    dets = []
    for level, (h, w) in enumerate(SIZES):
        stride_y, stride_x = PAD_HW[0] // h, PAD_HW[1] // w
        cands = []
        for yy in range(h):
            for xx in range(w):
                px, py = xx * stride_x, yy * stride_y  # centre of the size-stride anchor at the cell corner
                sig_ctr = 1 / (1 + math.exp(-float(ctr[level][0, 0, yy, xx])))
                for c in range(91):
                    sig_cls = 1 / (1 + math.exp(-float(cls[level][0, c, yy, xx])))
                    score = math.sqrt(sig_cls * sig_ctr)
                    if score > 0.25:
                        d = dist[level][0, :, yy, xx].tolist()
                        box = [px - d[0], py - d[1], px + d[2], py + d[3]]
                        box = [min(max(box[0], 0), IMG_HW[1]), min(max(box[1], 0), IMG_HW[0]),
                               min(max(box[2], 0), IMG_HW[1]), min(max(box[3], 0), IMG_HW[0])]
                        cands.append((score, box, c))
        dets += sorted(cands, key=lambda t: -t[0])[:30]
    check(result, class_nms(dets, 0.6, 50))


def test_fcos_forward_scales_by_anchor_size():
    head = build("fcos_resnet50_fpn").bbox_head.eval()
    gen = torch.Generator().manual_seed(2)
    feats = [torch.randn(1, 256, h, w, generator=gen) for h, w in SIZES[:2]]
    with torch.no_grad():
        _, bbox_preds, _ = head(feats)
        tower = feats[1]
        for layer in head.reg_convs:
            tower = layer(tower)
        raw = head.conv_reg(tower)
    torch.testing.assert_close(bbox_preds[1], torch.relu(raw) * 16)
    with pytest.raises(Exception, match="inference only"):
        head.loss(None)
