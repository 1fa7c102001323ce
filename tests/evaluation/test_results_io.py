"""COCO results JSON: round trip (boxes, scores, RLE masks), atomic save, validation errors."""
import json

import numpy as np
import pycocotools.mask as mask_util
import pytest

from coco_helpers import jittered_detections
from detzoo.errors import DataError
from detzoo.evaluation import load_results_json, results_to_coco_json, save_results_json


# pycocotools' decode trips a numpy 2 DeprecationWarning inside pycocotools itself.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_json_round_trip_with_masks(synthetic_gt, tmp_path):
    gt, _ = synthetic_gt
    dets_by_img = jittered_detections(gt, seed=2, with_masks=True)
    img_ids = list(dets_by_img)
    entries = results_to_coco_json([dets_by_img[i][0] for i in img_ids], img_ids, [1, 5, 9])
    path = tmp_path / "out" / "results.json"
    save_results_json(str(path), entries)
    assert sorted(p.name for p in path.parent.iterdir()) == ["results.json"]  # no temp left
    loaded = load_results_json(str(path))
    assert loaded == json.loads(json.dumps(entries))

    k = 0
    for img_id in img_ids:
        _, boxes, scores, labels, masks = dets_by_img[img_id]
        for j in range(len(boxes)):
            entry = loaded[k]
            x1, y1, x2, y2 = boxes[j].astype(np.float64)
            assert entry["image_id"] == img_id
            assert entry["category_id"] == [1, 5, 9][labels[j]]
            assert entry["bbox"] == pytest.approx([x1, y1, x2 - x1, y2 - y1], abs=1e-9)
            assert entry["score"] == pytest.approx(float(scores[j]), abs=1e-7)
            assert isinstance(entry["segmentation"]["counts"], str)
            decoded = mask_util.decode(entry["segmentation"])
            assert decoded.shape == masks[j].shape and np.array_equal(decoded.astype(bool),
                                                                      masks[j])
            k += 1
    assert k == len(loaded)


def _write(tmp_path, dets, name="res.json"):
    path = tmp_path / name
    path.write_text(json.dumps(dets))
    return str(path)


GOOD = dict(image_id=0, bbox=[1, 2, 3, 4], score=0.5, category_id=1)


@pytest.mark.parametrize("bad, message", [
    (dict(GOOD, score=None), "entry 2: 'score' must be a finite number"),
    ({k: v for k, v in GOOD.items() if k != "category_id"}, "entry 2: missing key 'category_id'"),
    ({k: v for k, v in GOOD.items() if k != "bbox"}, r"entry 2: missing key 'bbox'"),
    (dict(GOOD, bbox=[1, 2, 3]), r"entry 2: 'bbox' must be 4 finite numbers"),
    (dict(GOOD, bbox=[1, 2, "3", 4]), r"entry 2: 'bbox' must be 4 finite numbers"),
    (dict(GOOD, bbox=[1, 2, -3, 4]), r"entry 2: 'bbox' has negative width"),
    (dict(GOOD, image_id=42), "entry 2: image_id 42 is not in the annotation file"),
    (dict(GOOD, category_id=3), "entry 2: category_id 3 is not in the annotation file"),
    (dict(GOOD, segmentation=[[0, 0, 1, 1]]), "entry 2: 'segmentation' must be an RLE"),
])
def test_load_results_json_errors_name_file_entry_and_problem(tmp_path, sample_gt, bad, message):
    path = _write(tmp_path, [GOOD, GOOD, bad])
    with pytest.raises(DataError, match=message) as info:
        load_results_json(path, sample_gt)
    assert str(info.value).startswith(path)


def test_load_results_json_file_level_errors(tmp_path):
    with pytest.raises(DataError, match="results file not found"):
        load_results_json(str(tmp_path / "nope.json"))
    broken = tmp_path / "broken.json"
    broken.write_text("[{")
    with pytest.raises(DataError, match="broken.json: not valid JSON"):
        load_results_json(str(broken))
    with pytest.raises(DataError, match="expected a JSON list"):
        load_results_json(_write(tmp_path, {"a": 1}))
    # without an annotation file, ids are not checked
    assert load_results_json(_write(tmp_path, [dict(GOOD, image_id=42)]))[0]["image_id"] == 42


def test_sample_annotation_ids_are_accepted(sample_gt, tmp_path):
    assert set(sample_gt.getImgIds()) == {0, 1, 2, 3}  # the sample file is what we think
    dets = [dict(GOOD, image_id=i, category_id=c) for i in (0, 3) for c in (1, 2)]
    assert load_results_json(_write(tmp_path, dets), sample_gt) == dets
