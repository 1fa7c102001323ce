"""Bad input gives one clear line on stderr naming what is wrong, and exit code 2."""
import json

import numpy as np
import pytest

from detzoo.cli.main import main


def run_cli(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(err, *fragments):
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_missing_config_file(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", str(tmp_path / "nope" / "missing_cfg.py"))
    assert code == 2
    assert_one_line_error(err, "missing_cfg.py")


def test_unknown_config_name_suggests(capsys):
    code, _, err = run_cli(capsys, "train", "faster_rcnn_r50_fpn_1x_cocoo")
    assert code == 2
    assert_one_line_error(err, "faster_rcnn_r50_fpn_1x_coco")


def test_config_key_typo_names_nearest(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "faster_rcnn_r50_fpn_1x_coco", "--work-dir", str(tmp_path),
                           "--cfg-options", "optimizer.lrr=0.01")
    assert code == 2
    assert_one_line_error(err, "optimizer.lrr", "optimizer.lr")


def _tiny_coco(tmp_path, images, annotations):
    ann = {"images": images, "annotations": annotations,
           "categories": [{"id": 1, "name": "thing"}]}
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(ann))
    return path


def test_malformed_annotation_names_file_and_entry(capsys, tmp_path):
    ann = _tiny_coco(tmp_path, [{"id": 1, "file_name": "a.jpg", "height": 10, "width": 10}],
                     [{"id": 7, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3], "area": 9, "iscrowd": 0}])
    code, _, err = run_cli(capsys, "train", "faster_rcnn_r18_fpn_quickstart", "--work-dir", str(tmp_path / "w"),
                           "--cfg-options", f"data.train.ann_file={ann}", f"data.val.ann_file={ann}")
    assert code == 2
    assert_one_line_error(err, "ann.json", "7", "bbox")


def test_invalid_json_results_file(capsys, tmp_path):
    ann = _tiny_coco(tmp_path, [{"id": 1, "file_name": "a.jpg", "height": 10, "width": 10}],
                     [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 3], "area": 9, "iscrowd": 0}])
    bad = tmp_path / "results.json"
    bad.write_text('[{"image_id": 1, "bbox": [1, 2, 3, 4], ')
    code, _, err = run_cli(capsys, "eval-results", str(ann), str(bad))
    assert code == 2
    assert_one_line_error(err, "results.json")


def test_missing_checkpoint_is_named(capsys, tmp_path):
    code, _, err = run_cli(capsys, "infer", "faster_rcnn_r18_fpn_quickstart", str(tmp_path / "none.pth"),
                           "/work/none.jpg", "--out-dir", str(tmp_path / "vis"))
    assert code == 2
    assert_one_line_error(err, "none.pth")


def test_undecodable_image_is_named(capsys, tmp_path, quickstart_checkpoint):
    (tmp_path / "broken.jpg").write_bytes(b"definitely not a jpeg")
    code, _, err = run_cli(capsys, "infer", "faster_rcnn_r18_fpn_quickstart", str(quickstart_checkpoint),
                           str(tmp_path / "broken.jpg"), "--out-dir", str(tmp_path / "vis"))
    assert code == 2
    assert_one_line_error(err, "broken.jpg")


def test_corrupt_checkpoint_is_refused(capsys, tmp_path):
    bad = tmp_path / "corrupt.pth"
    bad.write_bytes(b"PK\x03\x04 garbage")
    code, _, err = run_cli(capsys, "infer", "faster_rcnn_r18_fpn_quickstart", str(bad), str(tmp_path),
                           "--out-dir", str(tmp_path / "vis"))
    assert code == 2
    assert_one_line_error(err, "corrupt.pth")


def test_missing_input_image(capsys, tmp_path):
    code, _, err = run_cli(capsys, "eval-results", str(tmp_path / "gt_missing.json"), str(tmp_path / "r.json"))
    assert code == 2
    assert_one_line_error(err, "gt_missing.json")
