"""VOCDataset (XML parsing, MMDetection 2.x conventions, filters, errors), the dataset wrappers,
the VOC copy of the synthetic shapes dataset, the voc0712 config and VOC evaluation dispatch."""
import json
import os
import pickle

import numpy as np
import pytest
import torch

from detzoo.data import (ConcatDataset, LoadAnnotations, LoadImageFromFile, RepeatDataset, VOCDataset,
                         make_shapes_dataset, make_shapes_voc, parse_voc_xml)
from detzoo.data.class_names import VOC_CLASSES
from detzoo.errors import ConfigError, DataError
from detzoo.structures import DetResult
from shared_paths import DATA

VOC_SAMPLE = DATA / "mmdet-tests" / "VOCdevkit"
needs_sample = pytest.mark.skipif(not (VOC_SAMPLE / "VOC2007" / "Annotations" / "000001.xml").is_file(),
                                  reason="MMDetection's VOC test sample is not in shared/")


def _obj(name, box, difficult=None):
    diff = "" if difficult is None else f"<difficult>{difficult}</difficult>"
    coords = "".join(f"<{t}>{v}</{t}>" for t, v in zip(("xmin", "ymin", "xmax", "ymax"), box))
    return f"<object><name>{name}</name>{diff}<bndbox>{coords}</bndbox></object>"


def _write_voc(root, images, year="VOC2007", set_name="trainval"):
    """images: {id: (size (w, h) or None, [object xml])}; writes Annotations + ImageSets."""
    folder = root / year
    (folder / "Annotations").mkdir(parents=True, exist_ok=True)
    (folder / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    for img_id, (size, objects) in images.items():
        size_xml = "" if size is None else f"<size><width>{size[0]}</width><height>{size[1]}</height></size>"
        (folder / "Annotations" / f"{img_id}.xml").write_text(
            f"<annotation>{size_xml}{''.join(objects)}</annotation>")
    ann_file = folder / "ImageSets" / "Main" / f"{set_name}.txt"
    ann_file.write_text("".join(f"{i}\n" for i in images))
    return str(ann_file), str(folder) + os.sep


@needs_sample
def test_mmdet_sample_boxes_are_shifted_to_zero_based():
    ds = VOCDataset(str(VOC_SAMPLE / "VOC2007/ImageSets/Main/trainval.txt"),
                    str(VOC_SAMPLE / "VOC2007") + "/", pipeline=[LoadImageFromFile(), LoadAnnotations()])
    # 000001.xml: dog 48 240 195 371, person 8 12 352 498 (1-based) -> minus 1
    ann = ds.get_ann_info(0)
    np.testing.assert_array_equal(ann["bboxes"], [[47, 239, 194, 370], [7, 11, 351, 497]])
    assert ann["labels"].tolist() == [VOC_CLASSES.index("dog"), VOC_CLASSES.index("person")]
    assert ann["bboxes"].dtype == np.float32 and ann["labels"].dtype == np.int64
    assert ds.data_infos[0] == dict(id="000001", filename="JPEGImages/000001.jpg", width=353, height=500)
    assert ds.flag.tolist() == [0] and ds.year == 2007 and ds.eval_mode == "11points"
    sample = ds[0]
    assert sample["img"].shape == (500, 353, 3) and sample["img_id"] == "000001"
    np.testing.assert_array_equal(sample["gt_bboxes"], ann["bboxes"])


def test_difficult_min_size_unknown_class_and_float_coordinates(tmp_path):
    ann_file, prefix = _write_voc(tmp_path, {
        "a": ((100, 80), [_obj("dog", (10, 10, 50, 40)),
                          _obj("cat", (20.7, 5, 30.2, 60), difficult=1),   # int(float()) truncates
                          _obj("unicorn", ("bad", 0, 0, 0)),               # unknown: skipped unread
                          _obj("dog", (60, 60, 65, 79))]),                 # 5 px wide
    }, year="VOC2012")
    ds = VOCDataset(ann_file, prefix, classes=("cat", "dog"), min_size=8)
    ann = ds.get_ann_info(0)
    np.testing.assert_array_equal(ann["bboxes"], [[9, 9, 49, 39]])
    assert ann["labels"].tolist() == [1]
    np.testing.assert_array_equal(ann["bboxes_ignore"], [[19, 4, 29, 59], [59, 59, 64, 78]])
    assert ann["labels_ignore"].tolist() == [0, 1]
    assert ds.year == 2012 and ds.eval_mode == "area" and ds.flag.tolist() == [1]
    # in test mode min_size does not apply (mmdet asserts it is unset there)
    test_ann = VOCDataset(ann_file, prefix, classes=("cat", "dog"), min_size=8,
                          test_mode=True).get_ann_info(0)
    assert test_ann["labels"].tolist() == [1, 1] and test_ann["labels_ignore"].tolist() == [0]


def test_training_filter_and_test_mode(tmp_path):
    images = {
        "plain": ((64, 64), [_obj("dog", (1, 1, 20, 20))]),
        "only_difficult": ((64, 64), [_obj("dog", (1, 1, 20, 20), difficult=1)]),  # kept (mmdet)
        "unknown_only": ((64, 64), [_obj("unicorn", (1, 1, 20, 20))]),
        "empty": ((64, 64), []),
        "tiny": ((64, 31), [_obj("dog", (1, 1, 20, 20))]),                         # short side < 32
    }
    ann_file, prefix = _write_voc(tmp_path, images)
    assert VOCDataset(ann_file, prefix).img_ids == ["plain", "only_difficult"]
    assert VOCDataset(ann_file, prefix, filter_empty_gt=False).img_ids == [
        "plain", "only_difficult", "unknown_only", "empty"]
    assert VOCDataset(ann_file, prefix, test_mode=True).img_ids == list(images)


def test_missing_size_is_read_from_the_image(tmp_path):
    import cv2

    ann_file, prefix = _write_voc(tmp_path, {"x": (None, [_obj("dog", (1, 1, 20, 20))])})
    (tmp_path / "VOC2007" / "JPEGImages").mkdir()
    cv2.imwrite(str(tmp_path / "VOC2007" / "JPEGImages" / "x.jpg"), np.zeros((40, 70, 3), np.uint8))
    assert VOCDataset(ann_file, prefix).data_infos[0]["width"] == 70


@pytest.mark.parametrize("content, message", [
    ("<annotation><size><width>10</width>", "malformed XML"),
    ("<annotation><object><name>dog</name></object></annotation>", r"object #0 \(dog\) has no <bndbox>"),
    ("<annotation>" + _obj("dog", ("abc", 1, 2, 3)) + "</annotation>", r"<xmin> is not a number: 'abc'"),
    ("<annotation>" + _obj("dog", (9, 1, 2, 3)) + "</annotation>", "xmax < xmin"),
    ("<annotation><object><bndbox/></object></annotation>", "object #0 has no <name>"),
    ("<annotation><size><width>0</width><height>5</height></size></annotation>", "must be positive"),
    ("<annotation>" + _obj("dog", (1, 1, 2, 3), difficult="yes") + "</annotation>",
     "<difficult> is not a number"),
])
def test_malformed_annotation_names_the_file(tmp_path, content, message):
    path = tmp_path / "000042.xml"
    path.write_text(content)
    with pytest.raises(DataError, match=message) as info:
        parse_voc_xml(str(path), VOC_CLASSES)
    assert "000042.xml" in str(info.value)


def test_missing_files_and_bad_image_sets(tmp_path):
    ann_file, prefix = _write_voc(tmp_path, {"a": ((64, 64), [])})
    (tmp_path / "VOC2007" / "Annotations" / "a.xml").unlink()
    with pytest.raises(DataError, match=r"annotation file not found: .*a\.xml"):
        VOCDataset(ann_file, prefix)
    with pytest.raises(DataError, match="image-set file not found"):
        VOCDataset(str(tmp_path / "nope.txt"), prefix)
    bad = tmp_path / "aeroplane_trainval.txt"
    bad.write_text("000005 -1\n")
    with pytest.raises(DataError, match="line 1: expected one image id"):
        VOCDataset(str(bad), prefix)
    bad.write_text("a\na\n")
    with pytest.raises(DataError, match="'a' is listed more than once"):
        VOCDataset(str(bad), prefix)
    with pytest.raises(ConfigError, match="eval_mode"):
        VOCDataset(ann_file, prefix, eval_mode="voc12", test_mode=True)


class _Recorder:
    """A dataset that returns what it was asked for."""
    accepts_sample_seed = True

    def __init__(self, n, flag, classes=("a",)):
        self.n, self.flag, self.CLASSES = n, np.asarray(flag, np.uint8), classes

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        return ("got", index)


def test_concat_keeps_indices_flags_and_seeds():
    first, second = _Recorder(2, [1, 0]), _Recorder(3, [0, 0, 1])
    cat = ConcatDataset([first, second])
    assert len(cat) == 5 and cat.CLASSES == ("a",)
    assert cat.flag.tolist() == [1, 0, 0, 0, 1]
    assert [cat[i] for i in range(5)] == [("got", 0), ("got", 1), ("got", 0), ("got", 1), ("got", 2)]
    assert cat[-1] == ("got", 2)
    assert cat[(3, 7)] == ("got", (1, 7))            # per-sample seed forwarded
    assert cat.locate(2) == (1, 0)
    with pytest.raises(IndexError):
        cat[5]
    with pytest.raises(DataError, match="has classes"):
        ConcatDataset([first, _Recorder(1, [0], classes=("b",))])


def test_repeat_dataset():
    rep = RepeatDataset(_Recorder(3, [0, 1, 1]), times=3)
    assert len(rep) == 9 and rep.flag.tolist() == [0, 1, 1] * 3 and rep.CLASSES == ("a",)
    assert [rep[i][1] for i in range(9)] == [0, 1, 2] * 3
    assert rep[(7, 11)] == ("got", (1, 11))
    with pytest.raises(IndexError):
        rep[9]
    for times in (0, 1.5, True):
        with pytest.raises(ConfigError, match="positive integer"):
            RepeatDataset(_Recorder(1, [0]), times=times)


@needs_sample
def test_voc0712_config_builds_07_plus_12_repeated(tmp_path):
    from detzoo.config import instantiate, load_config

    cfg = load_config("pascal_voc/faster_rcnn_r50_fpn_1x_voc0712")
    assert cfg["evaluation"]["metric"] == "mAP" and cfg["runner"]["max_epochs"] == 4
    assert cfg["lr_config"]["step"] == [3] and cfg["model"]["roi_head"]["bbox_head"]["num_classes"] == 20
    train = cfg["data"]["train"]
    for ds_cfg, year in zip(train["dataset"]["datasets"], ("VOC2007", "VOC2012")):
        ds_cfg["ann_file"] = str(VOC_SAMPLE / year / "ImageSets/Main/trainval.txt")
        ds_cfg["img_prefix"] = str(VOC_SAMPLE / year) + "/"
    dataset = instantiate(train)
    assert isinstance(dataset, RepeatDataset) and len(dataset) == 2 * 3
    assert dataset.CLASSES == VOC_CLASSES
    assert [dataset.dataset.locate(i) for i in range(2)] == [(0, 0), (1, 0)]
    flips = set()
    for seed in (0, 2):  # (per-sample seeds 0 and 2 happen to give both flip states)
        sample = dataset[(5, seed)]                    # the VOC2012 image, third repeat
        meta = sample["img_metas"]
        assert meta["ori_shape"] == (500, 335, 3) and meta["img_id"] == "000001"
        # Resize (1000, 600) keep_ratio: the 335 x 500 image becomes round(335 s) x round(500 s) with
        # s = min(1000 / 500, 600 / 335), i.e. 600 x 896, and the 0-based box [138, 199, 206, 300]
        # scales by 600 / 335, 896 / 500; RandomFlip maps x1, x2 to w - x2, w - x1 (mmdet 2.x)
        assert meta["img_shape"][:2] == (896, 600)
        x1, y1, x2, y2 = np.array([138, 199, 206, 300]) * np.array([600 / 335, 896 / 500] * 2)
        if meta["flip"]:
            width = meta["img_shape"][1]
            x1, x2 = width - x2, width - x1
        np.testing.assert_allclose(sample["gt_bboxes"].numpy()[0], [x1, y1, x2, y2], atol=0.05)
        assert sample["gt_labels"].tolist() == [VOC_CLASSES.index("train")]
        flips.add(meta["flip"])
    assert flips == {False, True}


# ---- the VOC copy of the synthetic shapes dataset ----------------------------------------------

@pytest.fixture(scope="module")
def shapes_voc(tmp_path_factory):
    return make_shapes_voc(tmp_path_factory.mktemp("shapes_voc"), num_train=6, num_val=3, seed=3)


def test_synthetic_voc_boxes_equal_coco_boxes(shapes_voc):
    for split in ("train", "val"):
        coco = json.load(open(shapes_voc[f"{split}_ann"]))
        ds = VOCDataset(shapes_voc[f"voc_{split}_ann"], shapes_voc["voc_img_prefix"],
                        classes=shapes_voc["classes"], test_mode=True)
        assert ds.img_ids == [img["file_name"][:-4] for img in coco["images"]]
        for k, img in enumerate(coco["images"]):
            anns = [a for a in coco["annotations"] if a["image_id"] == img["id"]]
            xywh = np.array([a["bbox"] for a in anns], np.float32).reshape(-1, 4)
            # whole-pixel COCO box [x, y, w, h] covers x .. x + w - 1: VOC loads it pixel-inclusive
            expected = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:] - 1], axis=1)
            ann = ds.get_ann_info(k)
            np.testing.assert_array_equal(ann["bboxes"], expected)
            assert ann["labels"].tolist() == [a["category_id"] - 1 for a in anns]
            assert ds.data_infos[k]["width"] == img["width"] and ds.data_infos[k]["height"] == img["height"]
            voc_jpg = os.path.join(shapes_voc["voc_img_prefix"], "JPEGImages", img["file_name"])
            coco_jpg = os.path.join(shapes_voc["img_dir"], img["file_name"])
            assert open(voc_jpg, "rb").read() == open(coco_jpg, "rb").read()
    assert ds.eval_mode == "11points"  # a VOC2007 folder


def test_voc_option_keeps_the_coco_files_byte_identical(shapes_voc, tmp_path):
    plain = make_shapes_dataset(tmp_path, num_train=6, num_val=3, seed=3)
    for key in ("train_ann", "val_ann"):
        assert open(plain[key], "rb").read() == open(shapes_voc[key], "rb").read()
    for name in sorted(os.listdir(plain["img_dir"])):
        assert (open(os.path.join(plain["img_dir"], name), "rb").read()
                == open(os.path.join(shapes_voc["img_dir"], name), "rb").read())
    assert not (tmp_path / "VOCdevkit").exists()


def test_evaluate_and_evaluate_detector_dispatch(shapes_voc, tmp_path):
    from detzoo.apis.test import evaluate_detector

    ds = VOCDataset(shapes_voc["voc_val_ann"], shapes_voc["voc_img_prefix"], classes=shapes_voc["classes"],
                    test_mode=True)
    perfect = []
    for k in range(len(ds)):
        ann = ds.get_ann_info(k)
        n = len(ann["labels"])
        perfect.append(DetResult(torch.from_numpy(ann["bboxes"]), torch.linspace(0.9, 0.5, n),
                                 torch.from_numpy(ann["labels"])))
    out = ds.evaluate(perfect, print_fn=None)
    assert list(out) == ["mAP", "AP50"] and out["mAP"] == pytest.approx(1.0)

    # shift every box by half its width: IoU 1/3 -> no TP
    shifted = []
    for r in perfect:
        half_w = (r.boxes[:, 2] - r.boxes[:, 0] + 1) / 2
        offset = torch.stack([half_w, torch.zeros(len(r)), half_w, torch.zeros(len(r))], 1)
        shifted.append(DetResult(r.boxes + offset, r.scores, r.labels))
    lines = []
    assert ds.evaluate(shifted, print_fn=lines.append)["mAP"] == 0.0
    assert "circle" in lines[0]

    out_json, out_pkl = tmp_path / "r.json", tmp_path / "r.pkl"
    metrics = evaluate_detector(None, ds, ["mAP"], results=perfect, out_file=str(out_json))
    assert metrics["AP50"] == 1.0
    entries = json.load(open(out_json))
    assert len(entries) == sum(len(r) for r in perfect) and entries[0]["image_id"] == ds.img_ids[0]
    evaluate_detector(None, ds, "mAP", results=perfect, out_file=str(out_pkl))
    assert len(pickle.load(open(out_pkl, "rb"))) == len(ds)
    with pytest.raises(ConfigError, match="metric 'mAP'"):
        evaluate_detector(None, ds, "bbox", results=perfect)
    with pytest.raises(DataError, match="results for the"):
        ds.evaluate(perfect[:-1], print_fn=None)


def test_cli_test_eval_map_on_a_voc_config(shapes_voc, quickstart_checkpoint, tmp_path, capsys):
    from detzoo.cli.main import main
    from detzoo.config import load_config

    cfg = load_config("faster_rcnn_r18_fpn_quickstart")
    cfg["data"]["test"] = dict(type=VOCDataset, ann_file=shapes_voc["voc_val_ann"],
                               img_prefix=shapes_voc["voc_img_prefix"], classes=shapes_voc["classes"],
                               pipeline=cfg["data"]["test"]["pipeline"])
    path = cfg.dump(tmp_path / "voc_quickstart.py")
    assert main(["test", str(path), str(quickstart_checkpoint), "--eval", "mAP", "--device", "cpu",
                 "--out", str(tmp_path / "dets.pkl")]) == 0
    out = capsys.readouterr().out
    assert "VOC mAP at IoU 0.5 (11points)" in out and "triangle" in out
    last = out.strip().splitlines()[-1]
    assert last.startswith("mAP: ") and ", AP50: " in last
    assert len(pickle.load(open(tmp_path / "dets.pkl", "rb"))) == 3


def test_loader_groups_a_repeated_voc_dataset_by_aspect_ratio(shapes_voc):
    from detzoo.config import load_config
    from detzoo.data import build_dataloader

    pipeline = load_config("faster_rcnn_r18_fpn_quickstart")["data"]["train"]["pipeline"]
    voc = VOCDataset(shapes_voc["voc_train_ann"], shapes_voc["voc_img_prefix"], pipeline=pipeline,
                     classes=shapes_voc["classes"])
    expected_flag = [int(info["width"] > info["height"]) for info in voc.data_infos]
    assert voc.flag.tolist() == expected_flag and 0 < sum(expected_flag) < len(voc)
    loader = build_dataloader(RepeatDataset(voc, times=2), samples_per_gpu=2, workers_per_gpu=0, seed=5)
    flags_seen = 0
    for batch in loader:
        wide = {meta["ori_shape"][1] > meta["ori_shape"][0] for meta in batch["img_metas"]}
        assert len(wide) == 1                          # one aspect-ratio group per batch
        flags_seen += len(batch["img_metas"])
        assert all(len(b) == len(lab) for b, lab in zip(batch["gt_bboxes"], batch["gt_labels"]))
    assert flags_seen >= 2 * len(voc)
