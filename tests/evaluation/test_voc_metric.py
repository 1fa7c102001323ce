"""VOC mAP (detzoo.evaluation.voc_metric) against a hand-worked case and against the VOC devkit's
``voc_eval.py`` algorithm, re-implemented here from its definition (one detection at a time)."""
import numpy as np
import pytest

from detzoo.errors import ConfigError, DataError
from detzoo.evaluation import average_precision, eval_map


def _empty():
    return np.zeros((0, 5), np.float32)


def _hand_case():
    """Class 0: image A has gts G1, G2 and a difficult D; image B has G3. Class 1: one gt in B
    and one wrong-class detection in A. Class 2: a detection and no gt at all."""
    ann_a = dict(bboxes=np.array([[0, 0, 9, 9], [20, 20, 29, 29]], np.float32),
                 labels=np.array([0, 0]),
                 bboxes_ignore=np.array([[40, 40, 49, 49]], np.float32), labels_ignore=np.array([0]))
    ann_b = dict(bboxes=np.array([[0, 0, 19, 19], [50, 50, 70, 70]], np.float32),
                 labels=np.array([0, 1]),
                 bboxes_ignore=np.zeros((0, 4), np.float32), labels_ignore=np.zeros(0, np.int64))
    dets_a = [np.array([[0, 0, 9, 9, 0.9],          # d1: G1 -> TP
                        [0, 0, 9, 9, 0.8],          # d2: G1 again -> FP
                        [40, 40, 49, 49, 0.7],      # d3: difficult D -> ignored
                        [100, 100, 110, 110, 0.5],  # d5: nothing -> FP
                        [20, 20, 29, 28, 0.3]],     # d6: G2, IoU 0.9 -> TP
                       np.float32),
              np.array([[0, 0, 9, 9, 0.95]], np.float32),   # on a class-0 gt -> FP for class 1
              np.array([[5, 5, 15, 15, 0.5]], np.float32)]
    # d4 vs G3: legacy IoU = 20*10 / (400 + 200 - 200) = 0.5 exactly -> TP (>=); modern IoU 0.47
    dets_b = [np.array([[0, 0, 19, 9, 0.6]], np.float32), _empty(), _empty()]
    return [dets_a, dets_b], [ann_a, ann_b]


def test_hand_worked_case_both_ap_modes():
    dets, anns = _hand_case()
    # by hand, score order d1 d2 d3 d4 d5 d6: tp 1 0 0 1 0 1, fp 0 1 0 0 1 0 (d3 neither)
    recall = np.array([1, 1, 1, 2, 2, 3]) / 3
    precision = np.array([1, 1 / 2, 1 / 2, 2 / 3, 1 / 2, 3 / 5])
    area_ap = (1 + 2 / 3 + 3 / 5) / 3                  # envelope 1, 2/3, 3/5 over recall thirds
    points_ap = (4 * 1 + 3 * (2 / 3) + 4 * (3 / 5)) / 11   # t = 0..0.3 | 0.4..0.6 | 0.7..1.0

    mean_ap, res = eval_map(dets, anns, eval_mode="area", use_legacy_coordinate=True, print_fn=None)
    assert res[0]["num_gts"] == 3 and res[0]["num_dets"] == 6
    np.testing.assert_allclose(res[0]["recall"], recall, rtol=1e-6)
    np.testing.assert_allclose(res[0]["precision"], precision, rtol=1e-6)
    assert res[0]["ap"] == pytest.approx(area_ap, abs=1e-6)
    assert res[1]["num_gts"] == 1 and res[1]["ap"] == 0.0
    assert res[2]["num_gts"] == 0                       # not part of the mean
    assert mean_ap == pytest.approx((area_ap + 0.0) / 2, abs=1e-6)

    mean_ap, res = eval_map(dets, anns, eval_mode="11points", use_legacy_coordinate=True, print_fn=None)
    assert res[0]["ap"] == pytest.approx(points_ap, abs=1e-6)
    assert mean_ap == pytest.approx(points_ap / 2, abs=1e-6)


def test_modern_coordinates_change_the_borderline_match():
    dets, anns = _hand_case()
    _, res = eval_map(dets, anns, eval_mode="area", use_legacy_coordinate=False, print_fn=None)
    # d4 (IoU 171/361 < 0.5) becomes FP: tp 1 0 0 0 0 1 -> precision 1, 1/2, 1/2, 1/3, 1/4, 2/5
    assert res[0]["ap"] == pytest.approx((1 + 2 / 5) / 3, abs=1e-6)


def test_difficult_only_class_and_detections_on_difficult_gts():
    ann = dict(bboxes=np.zeros((0, 4), np.float32), labels=np.zeros(0, np.int64),
               bboxes_ignore=np.array([[0, 0, 9, 9]], np.float32), labels_ignore=np.array([0]))
    ann2 = dict(bboxes=np.array([[0, 0, 9, 9]], np.float32), labels=np.array([1]),
                bboxes_ignore=np.array([[30, 30, 39, 39]], np.float32), labels_ignore=np.array([1]))
    dets = [[np.array([[0, 0, 9, 9, 0.9]], np.float32), _empty()],
            [_empty(), np.array([[30, 30, 39, 39, 0.99], [0, 0, 9, 9, 0.5]], np.float32)]]
    mean_ap, res = eval_map(dets, [ann, ann2], use_legacy_coordinate=True, print_fn=None)
    assert res[0]["num_gts"] == 0                  # only a difficult gt: class not evaluated
    # class 1: the detection on the difficult gt is neither TP nor FP, so precision stays 1
    assert res[1]["num_gts"] == 1 and res[1]["ap"] == pytest.approx(1.0)
    assert mean_ap == pytest.approx(1.0)
    # without labels_ignore nothing is ignored (mmdet): the difficult box is simply absent
    no_ign = dict(ann2, labels_ignore=None)
    _, res = eval_map([dets[1]], [no_ign], use_legacy_coordinate=True, print_fn=None)
    assert res[1]["precision"].tolist() == pytest.approx([0.0, 0.5])


# ---- independent reference: the devkit's voc_eval.py algorithm ----------------------------------

def devkit_voc_ap(rec, prec, use_07_metric):
    if use_07_metric:
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            p = 0 if np.sum(rec >= t) == 0 else np.max(prec[rec >= t])
            ap += p / 11.0
        return ap
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = max(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])


def devkit_voc_eval(det_results, gts, cls, ovthresh, use_07_metric):
    """gts: per image list of (box, label, difficult) in file order; boxes 0-based inclusive."""
    recs, npos = {}, 0
    for img, objs in enumerate(gts):
        mine = [(b, d) for b, lab, d in objs if lab == cls]
        recs[img] = dict(bbox=np.array([b for b, _ in mine], float).reshape(-1, 4),
                         difficult=np.array([d for _, d in mine], bool), det=[False] * len(mine))
        npos += sum(1 for _, d in mine if not d)
    image_ids, conf, boxes = [], [], []
    for img, per_class in enumerate(det_results):
        for row in per_class[cls]:
            image_ids.append(img)
            conf.append(float(row[4]))
            boxes.append(np.asarray(row[:4], float))
    order = np.argsort(-np.array(conf))
    tp, fp = np.zeros(len(order)), np.zeros(len(order))
    for d, k in enumerate(order):
        rec, bb = recs[image_ids[k]], boxes[k]
        ovmax, jmax = -np.inf, -1
        gt = rec["bbox"]
        if gt.size > 0:
            iw = np.maximum(np.minimum(gt[:, 2], bb[2]) - np.maximum(gt[:, 0], bb[0]) + 1.0, 0.0)
            ih = np.maximum(np.minimum(gt[:, 3], bb[3]) - np.maximum(gt[:, 1], bb[1]) + 1.0, 0.0)
            inters = iw * ih
            uni = ((bb[2] - bb[0] + 1.0) * (bb[3] - bb[1] + 1.0)
                   + (gt[:, 2] - gt[:, 0] + 1.0) * (gt[:, 3] - gt[:, 1] + 1.0) - inters)
            overlaps = inters / uni
            ovmax, jmax = np.max(overlaps), int(np.argmax(overlaps))
        if ovmax > ovthresh:
            if not rec["difficult"][jmax]:
                if not rec["det"][jmax]:
                    tp[d], rec["det"][jmax] = 1.0, True
                else:
                    fp[d] = 1.0
        else:
            fp[d] = 1.0
    fp, tp = np.cumsum(fp), np.cumsum(tp)
    rec = tp / float(npos) if npos else tp * np.nan
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    return npos, devkit_voc_ap(rec, prec, use_07_metric)


def _random_set(rng, num_images=40, num_classes=3):
    gts, det_results, anns = [], [], []
    for _ in range(num_images):
        objs = []
        for _ in range(rng.integers(0, 6)):
            x1, y1 = rng.integers(0, 200, size=2)
            w, h = rng.integers(5, 80, size=2)
            objs.append(([x1, y1, x1 + w, y1 + h], int(rng.integers(num_classes)), bool(rng.random() < 0.2)))
        gts.append(objs)
        kept = [o for o in objs if not o[2]]
        ign = [o for o in objs if o[2]]
        anns.append(dict(bboxes=np.array([o[0] for o in kept], np.float32).reshape(-1, 4),
                         labels=np.array([o[1] for o in kept], np.int64),
                         bboxes_ignore=np.array([o[0] for o in ign], np.float32).reshape(-1, 4),
                         labels_ignore=np.array([o[1] for o in ign], np.int64)))
        per_class = [[] for _ in range(num_classes)]
        for box, label, _ in objs:
            for _ in range(rng.integers(0, 3)):  # jittered copies: TPs, duplicates, near misses
                jitter = rng.normal(0, 6, size=4)
                cls = label if rng.random() < 0.85 else int(rng.integers(num_classes))
                per_class[cls].append(list(np.asarray(box, float) + jitter) + [rng.random()])
        for _ in range(rng.integers(0, 4)):  # background detections
            x1, y1 = rng.uniform(0, 250, size=2)
            per_class[int(rng.integers(num_classes))].append(
                [x1, y1, x1 + rng.uniform(3, 60), y1 + rng.uniform(3, 60), rng.random()])
        det_results.append([np.array(d, np.float32).reshape(-1, 5) for d in per_class])
    return det_results, anns, gts


@pytest.mark.parametrize("mode", ["area", "11points"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_devkit_voc_eval_on_random_data(mode, seed):
    rng = np.random.default_rng(seed)
    det_results, anns, gts = _random_set(rng)
    # the devkit reads the float32 boxes we evaluate
    mean_ap, res = eval_map(det_results, anns, iou_thr=0.5, eval_mode=mode,
                            use_legacy_coordinate=True, print_fn=None)
    ref = [devkit_voc_eval(det_results, gts, c, 0.5, mode == "11points") for c in range(3)]
    for c, (npos, ap) in enumerate(ref):
        assert res[c]["num_gts"] == npos
        if npos:
            assert res[c]["ap"] == pytest.approx(ap, abs=1e-6), (c, mode)
    ref_map = np.mean([ap for npos, ap in ref if npos])
    assert mean_ap == pytest.approx(ref_map, abs=1e-6)
    assert 0.05 < mean_ap < 0.95  # the random set exercises both hits and misses


def test_average_precision_edges_and_errors():
    assert average_precision(np.zeros(0), np.zeros(0), "area") == 0.0
    assert average_precision(np.zeros(0), np.zeros(0), "11points") == 0.0
    assert average_precision(np.array([0.5, 1.0]), np.array([1.0, 1.0]), "area") == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="11points"):
        average_precision(np.ones(1), np.ones(1), "voc12")
    with pytest.raises(DataError, match=r"\[n, 5\]"):
        eval_map([[np.ones((2, 4), np.float32)]], [dict(bboxes=np.zeros((0, 4)), labels=np.zeros(0))],
                 print_fn=None)
    with pytest.raises(DataError, match="2 detection results but 1"):
        eval_map([[_empty()], [_empty()]], [dict(bboxes=np.zeros((0, 4)), labels=np.zeros(0))],
                 print_fn=None)


def test_table_is_printed_with_class_names():
    dets, anns = _hand_case()
    lines = []
    eval_map(dets, anns, class_names=("cat", "dog", "cow"), print_fn=lines.append)
    text = "\n".join(lines)
    assert "cat" in text and "cow" in text and "mAP" in text
