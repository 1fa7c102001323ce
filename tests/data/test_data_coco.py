"""CocoDataset on MMDetection's coco_sample.json (checked by hand) and on broken jsons."""
import json
import warnings

import numpy as np
import pytest

from detzoo.data import CocoDataset
from detzoo.errors import DataError

from shared_paths import COCO_SAMPLE

SAMPLE = str(COCO_SAMPLE)
# coco_sample.json by hand: images 0,1,2 are 800x800, image 3 is 20x20; categories 1 bus, 2 car.
# image 0: ann 1 bus [0,0,20,20]; ann 2 car crowd.   image 1: ann 3 bus; ann 4 ignore=1;
# ann 5 w=0; ann 6 category 3 (not in categories).  image 2: none.  image 3: ann 7 area 0,
# ann 9 h=0.1.


def _sample(**kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CocoDataset(SAMPLE, "", [], **kwargs)


def test_train_mode_filters_empty_and_small_images():
    ds = _sample()
    # image 2 has no annotation, image 3 is smaller than min_size=32
    assert ds.img_ids == [0, 1] and len(ds) == 2
    assert ds.CLASSES == ("bus", "car") and ds.cat_ids == [1, 2]
    assert ds.cat2label == {1: 0, 2: 1}
    assert [info["filename"] for info in ds.data_infos] == ["fake1.jpg", "fake2.jpg"]
    assert ds.flag.tolist() == [0, 0]  # 800x800: w / h is not > 1


def test_test_mode_keeps_every_image():
    ds = _sample(test_mode=True)
    assert ds.img_ids == [0, 1, 2, 3]
    assert ds.get_ann_info(2)["bboxes"].shape == (0, 4)
    # image 3: area 0 and h < 1 are both skipped
    assert ds.get_ann_info(3)["bboxes"].shape == (0, 4)
    assert len(_sample(filter_empty_gt=False)) == 3  # only the 20x20 image goes (min_size)
    assert len(_sample(filter_empty_gt=False, min_size=0)) == 4


def test_ann_info_boxes_labels_crowd_and_masks():
    ds = _sample()
    a0 = ds.get_ann_info(0)
    np.testing.assert_array_equal(a0["bboxes"], [[0, 0, 20, 20]])   # xywh -> xyxy
    np.testing.assert_array_equal(a0["labels"], [0])
    np.testing.assert_array_equal(a0["bboxes_ignore"], [[0, 0, 20, 20]])  # crowd car
    assert a0["masks"] == [[[0, 0, 10, 0, 10, 10, 0, 10, 0, 0]]]
    assert a0["bboxes"].dtype == np.float32 and a0["labels"].dtype == np.int64
    a1 = ds.get_ann_info(1)  # ann 4 ignored, ann 5 zero width, ann 6 unknown category
    np.testing.assert_array_equal(a1["bboxes"], [[0, 0, 20, 20]])
    assert a1["bboxes_ignore"].shape == (0, 4) and a1["masks"] == [None]


def test_unknown_category_is_skipped_with_a_warning():
    with pytest.warns(UserWarning, match=r"coco_sample.json.*\[6\]"):
        CocoDataset(SAMPLE, "", [])


def test_classes_subset_and_order_by_name():
    ds = _sample(classes=("car",))
    assert ds.cat_ids == [2] and ds.img_ids == [0]  # only image 0 has a car (a crowd one)
    a0 = ds.get_ann_info(0)
    assert a0["bboxes"].shape == (0, 4) and a0["bboxes_ignore"].shape == (1, 4)
    swapped = _sample(classes=("car", "bus"))
    assert swapped.cat2label == {2: 0, 1: 1}
    np.testing.assert_array_equal(swapped.get_ann_info(0)["labels"], [1])
    with pytest.raises(DataError, match="truck"):
        _sample(classes=("bus", "truck"))


def test_getitem_runs_the_pipeline_and_resamples_dropped_images():
    seen = []

    def drop_image_0(results):
        seen.append(results["img_id"])
        return None if results["img_id"] == 0 else results

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train = CocoDataset(SAMPLE, "imgs", [drop_image_0])
        test = CocoDataset(SAMPLE, "imgs", [drop_image_0], test_mode=True)
    out = train[0]
    assert out["img_id"] == 1 and out["img_prefix"] == "imgs" and seen[0] == 0
    assert set(out) >= {"img_info", "ann_info", "bbox_fields", "mask_fields"}
    assert test[0] is None  # test mode never swaps images
    a = train[(1, (3, 0, 0, 5))]["rng"].random()
    b = train[(1, (3, 0, 0, 5))]["rng"].random()
    assert a == b


# ------------------------------------------------------------------ error messages
def _write(tmp_path, data, name="ann.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def _valid():
    return dict(images=[dict(id=1, file_name="a.jpg", width=100, height=80)],
                annotations=[dict(id=10, image_id=1, category_id=1, bbox=[1, 2, 30, 40],
                                  area=1200, iscrowd=0)],
                categories=[dict(id=1, name="thing")])


def test_valid_minimal_file_loads(tmp_path):
    ds = CocoDataset(_write(tmp_path, _valid()), "", [])
    np.testing.assert_array_equal(ds.get_ann_info(0)["bboxes"], [[1, 2, 31, 42]])
    assert ds.flag.tolist() == [1]
    assert len(ds.coco.getAnnIds()) == 1


def test_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match="not found.*missing.json"):
        CocoDataset(str(tmp_path / "missing.json"), "", [])


def test_invalid_json_names_file_line_and_column(tmp_path):
    path = _write(tmp_path, '{\n  "images": [\n    {"id": 1,}\n  ]\n}', "broken.json")
    with pytest.raises(DataError, match=r"broken.json: invalid JSON at line 3, column 14"):
        CocoDataset(path, "", [])


@pytest.mark.parametrize("section, index, key, pattern", [
    ("images", 0, "width", r"images\[0\] \(id 1\): missing key 'width'"),
    ("images", 0, "id", r"images\[0\]: missing key 'id'"),
    ("annotations", 0, "bbox", r"annotations\[0\] \(id 10\): missing key 'bbox'"),
    ("annotations", 0, "image_id", r"annotations\[0\] \(id 10\): missing key 'image_id'"),
    ("categories", 0, "name", r"categories\[0\] \(id 1\): missing key 'name'"),
])
def test_missing_key_names_file_entry_and_key(tmp_path, section, index, key, pattern):
    data = _valid()
    del data[section][index][key]
    path = _write(tmp_path, data)
    with pytest.raises(DataError, match="ann.json: " + pattern):
        CocoDataset(path, "", [])


@pytest.mark.parametrize("bbox", [[1, 2, 3], [1, 2, 3, "4"], "1,2,3,4", [1, 2, 3, None],
                                  [1, 2, 3, float("nan")]])
def test_bad_bbox_names_the_annotation_id(tmp_path, bbox):
    data = _valid()
    data["annotations"][0]["bbox"] = bbox
    with pytest.raises(DataError, match=r"ann.json: annotation id 10 .*bbox must be 4 numbers"):
        CocoDataset(_write(tmp_path, data), "", [])


def test_unknown_image_and_duplicate_ids(tmp_path):
    data = _valid()
    data["annotations"][0]["image_id"] = 99
    with pytest.raises(DataError, match=r"annotation id 10 .*image_id 99"):
        CocoDataset(_write(tmp_path, data), "", [])
    data = _valid()
    data["annotations"].append(dict(data["annotations"][0]))
    with pytest.raises(DataError, match=r"annotations\[1\]: duplicate id 10"):
        CocoDataset(_write(tmp_path, data), "", [])


def test_structural_errors(tmp_path):
    with pytest.raises(DataError, match="top level"):
        CocoDataset(_write(tmp_path, "[1, 2]"), "", [])
    data = _valid()
    del data["categories"]
    with pytest.raises(DataError, match="'categories'"):
        CocoDataset(_write(tmp_path, data), "", [])
    data = _valid()
    data["images"][0]["height"] = 0
    with pytest.raises(DataError, match=r"images\[0\] \(id 1\): height"):
        CocoDataset(_write(tmp_path, data), "", [])
