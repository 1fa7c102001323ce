"""init_detector / inference_detector / the test and infer commands on a random-weight model."""
import json

import cv2
import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from detzoo.apis.inference import inference_detector, init_detector
from detzoo.cli.main import main
from shared_paths import DEMO_JPG



@pytest.fixture(scope="module")
def model(quickstart_checkpoint):
    return init_detector("faster_rcnn_r18_fpn_quickstart", str(quickstart_checkpoint),
                         cfg_options={"model.test_cfg.rcnn.score_thr": 0.0})


def demo_path():
    assert DEMO_JPG.is_file(), DEMO_JPG
    return str(DEMO_JPG)


def test_path_array_and_list_inputs_agree(model):
    img = cv2.imread(demo_path())
    from_path = inference_detector(model, demo_path())
    from_array = inference_detector(model, img)
    both = inference_detector(model, [demo_path(), img])
    assert isinstance(both, list) and len(both) == 2
    for det in (from_array, *both):
        assert torch.equal(det.boxes, from_path.boxes)
        assert torch.equal(det.labels, from_path.labels)
    assert len(from_path) > 0


def test_detections_are_in_original_pixels_and_well_formed(model):
    det = inference_detector(model, demo_path())
    h, w = cv2.imread(demo_path()).shape[:2]
    assert det.boxes.dtype == torch.float32 and det.labels.dtype == torch.long
    assert (det.boxes[:, 0] >= 0).all() and (det.boxes[:, 2] <= w + 1e-3).all()
    assert (det.boxes[:, 1] >= 0).all() and (det.boxes[:, 3] <= h + 1e-3).all()
    # the quickstart resizes to at most 320x256: in original pixels boxes may exceed that
    assert det.boxes[:, 2].max() > 320 or det.boxes[:, 3].max() > 256
    assert torch.all(det.scores[:-1] >= det.scores[1:])
    assert det.labels.max() < len(model.class_names) and det.masks is None
    assert model.class_names == ("circle", "square", "triangle", "star")


def test_cfg_options_change_the_test_cfg(quickstart_checkpoint):
    strict = init_detector("faster_rcnn_r18_fpn_quickstart", str(quickstart_checkpoint),
                           cfg_options={"model.test_cfg.rcnn.score_thr": 0.3, "model.test_cfg.rcnn.max_per_img": 5})
    det = inference_detector(strict, demo_path())
    assert len(det) <= 5 and bool((det.scores > 0.3).all())


def test_bad_array_is_refused(model):
    from detzoo.errors import DetzooError

    with pytest.raises(DetzooError, match="HxWx3"):
        inference_detector(model, np.zeros((10, 10), dtype=np.uint8))


def test_test_command_metrics_equal_pycocotools(capsys, tmp_path, shapes_dataset, quickstart_checkpoint):
    out = tmp_path / "results.json"
    code = main(["test", "faster_rcnn_r18_fpn_quickstart", str(quickstart_checkpoint), "--eval", "bbox",
                 "--out", str(out), "--show-dir", str(tmp_path / "vis"), "--cfg-options",
                 f"data.test.ann_file={shapes_dataset['val_ann']}",
                 f"data.test.img_prefix={shapes_dataset['img_dir']}/", "model.test_cfg.rcnn.score_thr=0.0",
                 "data.workers_per_gpu=0"])
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    assert code == 0
    values = dict(item.split(": ") for item in printed.split(", "))
    gt = COCO(shapes_dataset["val_ann"])
    dets = json.loads(out.read_text())
    assert len(dets) > 0
    ev = COCOeval(gt, gt.loadRes(dets), "bbox")
    ev.params.maxDets = [100, 300, 1000]  # MMDetection's setting (fidelity.md B.13)
    ev.evaluate(); ev.accumulate(); ev.summarize()
    assert float(values["bbox_mAP"]) == pytest.approx(round(ev.stats[0], 3), abs=1e-9)
    assert float(values["bbox_mAP_50"]) == pytest.approx(round(ev.stats[1], 3), abs=1e-9)
    assert len(list((tmp_path / "vis").iterdir())) == len(gt.getImgIds())


def test_infer_command_writes_pictures_and_json(capsys, tmp_path, quickstart_checkpoint):
    code = main(["infer", "faster_rcnn_r18_fpn_quickstart", str(quickstart_checkpoint), demo_path(),
                 "--out-dir", str(tmp_path), "--score-thr", "0.0"])
    assert code == 0
    drawn = cv2.imread(str(tmp_path / "demo.jpg"))
    assert drawn.shape == cv2.imread(demo_path()).shape
    assert not np.array_equal(drawn, cv2.imread(demo_path()))
    summary = json.loads((tmp_path / "detections.json").read_text())
    assert summary[0]["image"] == demo_path() and len(summary[0]["detections"]) > 0


def test_infer_show_dir_is_the_out_dir(capsys, tmp_path, quickstart_checkpoint):
    # `--show-dir` as in `detzoo test`: the same pictures and detections.json
    code = main(["infer", "faster_rcnn_r18_fpn_quickstart", str(quickstart_checkpoint), demo_path(),
                 "--show-dir", str(tmp_path / "shown"), "--score-thr", "0.0"])
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "shown").iterdir()) == ["demo.jpg", "detections.json"]
