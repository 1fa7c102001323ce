"""evaluate_coco against pycocotools COCOeval called directly, plus hand-worked cases."""
import contextlib
import copy
import io
import json

import numpy as np
import pytest
import torch
from pycocotools.cocoeval import COCOeval

from coco_helpers import (STAT_NAMES, coco_from_dict, expected_metrics, jittered_detections,
                          reference_dicts, reference_eval)
from detzoo.errors import ConfigError, DataError
from detzoo.evaluation import (evaluate_coco, evaluate_results_file, format_metrics_line,
                               results_to_coco_json, save_results_json)
from detzoo.structures import DetResult


def _quiet(*args, **kwargs):
    return evaluate_coco(*args, print_fn=None, **kwargs)


def _assert_metrics(actual: dict, expected: dict):
    for key, value in expected.items():
        assert actual[key] == pytest.approx(value, abs=1e-9), key


def test_bbox_on_mmdet_sample_matches_pycocotools(sample_gt):
    rng = np.random.RandomState(0)
    dets = []
    for img_id in (0, 1, 2, 3):
        for _ in range(6):
            x, y = rng.uniform(0, 6, 2)
            w, h = rng.uniform(8, 24, 2)
            dets.append(dict(image_id=img_id, bbox=[x, y, w, h], score=float(rng.rand()),
                             category_id=int(rng.choice([1, 2]))))
    ref = reference_eval(sample_gt, dets, "bbox")
    metrics = _quiet(sample_gt, dets, metric="bbox")
    _assert_metrics(metrics, expected_metrics(ref, "bbox_"))
    assert metrics["bbox_mAP"] > 0  # the detections do hit something
    ap = ref.stats[:6]
    assert metrics["bbox_mAP_copypaste"] == " ".join(f"{a:.3f}" for a in ap)


def test_bbox_and_segm_on_synthetic_gt_match_pycocotools(synthetic_gt):
    gt, coco = synthetic_gt
    dets_by_img = jittered_detections(gt, with_masks=True)
    img_ids = list(dets_by_img)
    ours = results_to_coco_json([dets_by_img[i][0] for i in img_ids], img_ids, [1, 5, 9])
    ref_dicts = reference_dicts(dets_by_img)
    metrics = _quiet(coco, ours, metric=("bbox", "segm"))

    ref_bbox = reference_eval(coco, ref_dicts, "bbox", drop="segmentation")
    # MMDetection >= 2.12 drops 'bbox' from segm results so the area split uses the mask area.
    ref_segm = reference_eval(coco, ref_dicts, "segm", drop="bbox")
    _assert_metrics(metrics, expected_metrics(ref_bbox, "bbox_"))
    _assert_metrics(metrics, expected_metrics(ref_segm, "segm_"))
    assert 0.2 < metrics["bbox_mAP"] < 0.95 and 0.1 < metrics["segm_mAP"] < 0.95
    assert metrics["bbox_mAP"] != metrics["segm_mAP"]


def test_proposal_is_class_agnostic_and_matches_pycocotools(synthetic_gt):
    gt, coco = synthetic_gt
    dets_by_img = jittered_detections(gt, seed=3)
    dets = reference_dicts(dets_by_img)
    metrics = _quiet(coco, dets, metric="proposal")
    ref = reference_eval(coco, dets, "bbox", use_cats=False)
    _assert_metrics(metrics, expected_metrics(ref, "", with_ap=False))
    assert set(metrics) == set(STAT_NAMES[6:])

    # Exact boxes with every label wrong: AR is perfect class-agnostically, bbox AP is 0.
    wrong = [dict(image_id=a["image_id"], bbox=a["bbox"], score=0.9,
                  category_id=1 if a["category_id"] != 1 else 5)
             for a in gt["annotations"] if not a["iscrowd"]]
    metrics = _quiet(coco, wrong, metric=("proposal", "bbox"))
    assert metrics["AR@100"] == 1.0 and metrics["AR@1000"] == 1.0
    assert metrics["bbox_mAP"] == 0.0


def test_perfect_detections_give_map_one(synthetic_gt):
    gt, coco = synthetic_gt
    dets = [dict(image_id=a["image_id"], bbox=a["bbox"], score=1.0 - 0.001 * k,
                 category_id=a["category_id"])
            for k, a in enumerate(gt["annotations"]) if not a["iscrowd"]]
    metrics = _quiet(coco, dets, metric="bbox")
    for key in ("bbox_mAP", "bbox_mAP_50", "bbox_mAP_75", "bbox_AR@100", "bbox_AR@1000"):
        assert metrics[key] == 1.0, key


def _one_image_gt(boxes_xywh, size=400):
    return coco_from_dict(dict(
        images=[dict(id=1, height=size, width=size, file_name="a.jpg")],
        categories=[dict(id=1, name="thing")],
        annotations=[dict(id=i + 1, image_id=1, category_id=1, bbox=list(b), iscrowd=0,
                          area=float(b[2] * b[3])) for i, b in enumerate(boxes_xywh)]))


def test_hand_worked_ap50():
    # 3 ground truths; ranked detections TP, FP, TP, FP, TP (FPs far from everything).
    gts = [[10, 10, 50, 50], [100, 10, 50, 50], [200, 10, 50, 50]]
    coco = _one_image_gt(gts)
    far = [300, 300, 50, 50]
    ranked = [gts[0], far, gts[1], [320, 250, 40, 40], gts[2]]
    dets = [dict(image_id=1, bbox=b, score=1.0 - 0.1 * k, category_id=1)
            for k, b in enumerate(ranked)]
    # precision 1, 1/2, 2/3, 1/2, 3/5 at recall 1/3, 1/3, 2/3, 2/3, 1; made monotone it is
    # 1 on recall [0, 1/3] (34 of the 101 recall points), 2/3 on (1/3, 2/3] (33 points) and
    # 3/5 on (2/3, 1] (34 points).
    expected = (34 * 1.0 + 33 * 2 / 3 + 34 * 0.6) / 101
    metrics = _quiet(coco, dets, metric="bbox")
    assert metrics["bbox_mAP_50"] == round(expected, 3) == 0.756
    assert metrics["bbox_mAP"] == 0.756  # exact boxes: the same at every IoU threshold
    assert metrics["bbox_AR@100"] == 1.0


def test_max_dets_semantics_of_mmdetection():
    """150 objects, 150 exact detections: pycocotools' defaults cap AP50 at 100 detections;
    MMDetection's maxDets=(100, 300, 1000) gives AP50 at 1000 but mAP still at 100."""
    gts = [[(i % 15) * 26 + 2, (i // 15) * 26 + 2, 20, 20] for i in range(150)]
    coco = _one_image_gt(gts)
    dets = [dict(image_id=1, bbox=b, score=1.0 - 0.001 * k, category_id=1)
            for k, b in enumerate(gts)]
    capped = 67 / 101  # recall stops at 100/150: precision 1 on the 67 recall points <= 0.66
    default_ref = reference_eval(coco, dets, "bbox", max_dets=(1, 10, 100))
    assert default_ref.stats[1] == pytest.approx(capped)

    metrics = _quiet(coco, dets, metric="bbox")
    assert metrics["bbox_mAP_50"] == 1.0 and metrics["bbox_mAP_75"] == 1.0
    assert metrics["bbox_mAP_s"] == 1.0
    assert metrics["bbox_mAP"] == round(capped, 3) == 0.663
    assert metrics["bbox_AR@100"] == round(100 / 150, 3)
    assert metrics["bbox_AR@300"] == 1.0 and metrics["bbox_AR@1000"] == 1.0


def test_empty_detections_give_zeros_with_a_warning(synthetic_gt):
    _, coco = synthetic_gt
    with pytest.warns(UserWarning, match="no detections"):
        metrics = _quiet(coco, [], metric=("bbox", "segm", "proposal"))
    assert metrics["bbox_mAP"] == 0.0 and metrics["segm_mAP_l"] == 0.0
    assert metrics["AR@1000"] == 0.0 and metrics["bbox_AR@100"] == 0.0
    assert metrics["bbox_mAP_copypaste"] == "0.000 0.000 0.000 0.000 0.000 0.000"


def test_classwise_matches_precision_array_and_prints_table(synthetic_gt, capsys):
    gt, coco = synthetic_gt
    dets = reference_dicts(jittered_detections(gt, seed=5))
    metrics = evaluate_coco(coco, dets, metric="bbox", classwise=True)
    printed = capsys.readouterr().out
    ref = reference_eval(coco, dets, "bbox")
    precision = ref.eval["precision"]  # [iou, recall, class(sorted ids 1, 5, 9), area, maxDets]
    for k, name in enumerate(["cat", "dog", "bird"]):
        values = precision[:, :, k, 0, -1]
        expected = round(float(values[values > -1].mean()), 3)
        assert metrics[f"bbox_{name}_precision"] == expected
        assert name in printed
    assert "bbox_mAP_50" in printed and f"{metrics['bbox_mAP_50']:.3f}" in printed
    assert "Average Precision" not in printed  # pycocotools' own printing is silenced


def test_paths_and_results_file_roundtrip(synthetic_gt, tmp_path):
    gt, coco = synthetic_gt
    ann_path = tmp_path / "ann.json"
    ann_path.write_text(json.dumps(gt))
    dets = reference_dicts(jittered_detections(gt, seed=7))
    res_path = tmp_path / "res.json"
    save_results_json(str(res_path), dets)
    out = tmp_path / "sub" / "metrics.json"
    metrics = evaluate_results_file(str(ann_path), str(res_path), "bbox", out=str(out),
                                    print_fn=None)
    _assert_metrics(metrics, expected_metrics(reference_eval(coco, dets, "bbox"), "bbox_"))
    assert json.loads(out.read_text()) == metrics
    assert sorted(p.name for p in out.parent.iterdir()) == ["metrics.json"]


def test_custom_img_ids_restrict_evaluation(synthetic_gt):
    gt, coco = synthetic_gt
    dets = reference_dicts(jittered_detections(gt, seed=9))
    subset = [10, 12]
    metrics = _quiet(coco, dets, metric="bbox", img_ids=subset)
    with contextlib.redirect_stdout(io.StringIO()):
        ref = COCOeval(coco, coco.loadRes(copy.deepcopy(dets)), "bbox")
        ref.params.imgIds, ref.params.maxDets = subset, [100, 300, 1000]
        ref.evaluate(), ref.accumulate(), ref.summarize()
    _assert_metrics(metrics, expected_metrics(ref, "bbox_"))
    assert metrics["bbox_mAP"] != _quiet(coco, dets, metric="bbox")["bbox_mAP"]


def test_bad_inputs_raise_clear_errors(synthetic_gt, tmp_path):
    gt, coco = synthetic_gt
    with pytest.raises(ConfigError, match="unknown metric 'keypoints'"):
        _quiet(coco, [], metric="keypoints")
    boxes_only = [dict(image_id=10, bbox=[0, 0, 5, 5], score=0.5, category_id=1)]
    with pytest.raises(DataError, match="no 'segmentation'"):
        _quiet(coco, boxes_only, metric="segm")
    with pytest.raises(DataError, match="entry 0: image_id 999"):
        _quiet(coco, [dict(boxes_only[0], image_id=999)])
    with pytest.raises(DataError, match="annotation file not found"):
        _quiet(str(tmp_path / "missing.json"), boxes_only)


def test_format_metrics_line():
    line = format_metrics_line({"bbox_mAP": 0.374, "bbox_mAP_50": 0.5814, "AR@100": 1.0,
                                "bbox_mAP_copypaste": "0.374 0.581"})
    assert line == ("bbox_mAP: 0.374, bbox_mAP_50: 0.581, AR@100: 1.000, "
                    "bbox_mAP_copypaste: 0.374 0.581")


def test_results_to_coco_json_boxes_and_labels():
    result = DetResult(torch.tensor([[10.5, 20.0, 30.25, 60.0], [0.0, 0.0, 1.0, 2.0]]),
                       torch.tensor([0.9, 0.25]), torch.tensor([1, 0]))
    entries = results_to_coco_json([result, DetResult.empty()], [7, 8], [3, 17])
    assert entries == [
        dict(image_id=7, bbox=[10.5, 20.0, 19.75, 40.0], score=pytest.approx(0.9),
             category_id=17),
        dict(image_id=7, bbox=[0.0, 0.0, 1.0, 2.0], score=0.25, category_id=3)]
    with pytest.raises(DataError, match="label 2"):
        results_to_coco_json([DetResult(result.boxes, result.scores, torch.tensor([2, 0]))],
                             [7], [3, 17])
