"""browse-dataset: pictures after the training pipeline against the image resized by hand, the
un-normalisation round trip, polygon masks and ground-truth mask blending."""
import json
import os

import cv2
import numpy as np
import pytest
import torch

from detzoo.cli.main import main
from detzoo.data import CocoDataset
from detzoo.data.transforms import (Collect, DefaultFormatBundle, LoadAnnotations, LoadImageFromFile,
                                    Normalize, Pad, Resize)
from detzoo.tools.browse import browse_dataset, denormalize_image, find_normalization, masks_to_bitmaps
from detzoo.visualization import draw_ground_truth, get_color

NORM = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)


@pytest.mark.parametrize("to_rgb", [True, False])
def test_denormalize_inverts_normalize(to_rgb):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    step = Normalize(mean=NORM["mean"], std=NORM["std"], to_rgb=to_rgb)
    chw = torch.from_numpy(step({"img": img.copy()})["img"].transpose(2, 0, 1).copy())
    norm = find_normalization([dict(type=Normalize, mean=NORM["mean"], std=NORM["std"], to_rgb=to_rgb)])
    assert np.array_equal(denormalize_image(chw, norm), img)


def test_polygon_and_bitmap_masks():
    square = [np.array([2, 2, 5, 2, 5, 5, 2, 5], np.float32)]  # pixels 2..5 inclusive
    bitmaps = masks_to_bitmaps([square], 8, 9)
    assert bitmaps.shape == (1, 8, 9) and bitmaps.sum() == 16 and bitmaps[0, 2:6, 2:6].all()
    padded = torch.zeros(1, 10, 12, dtype=torch.uint8)
    padded[0, 1, 1] = 1
    assert masks_to_bitmaps(padded, 8, 9).sum() == 1  # cropped to the image, padding dropped


def test_ground_truth_masks_are_blended_in_class_colour():
    img = np.full((40, 50, 3), 100, np.uint8)
    mask = np.zeros((1, 40, 50), bool)
    mask[0, 10:20, 10:30] = True
    out = draw_ground_truth(img, [[5, 5, 45, 35]], [2], ["a", "b", "c"], masks=mask, font_scale=0.3)
    expected = np.rint(0.5 * 100 + 0.5 * np.array(get_color(2))).astype(np.uint8)
    assert (out[15, 20] == expected).all()
    assert (out[30, 40] == 100).all()  # inside the box, outside the mask: untouched


def test_train_phase_pictures_match_the_resized_image(shapes_dataset, tmp_path):
    pipeline = [dict(type=LoadImageFromFile), dict(type=LoadAnnotations, with_bbox=True, with_mask=True),
                dict(type=Resize, img_scale=(200, 150), keep_ratio=False), dict(type=Normalize, **NORM),
                dict(type=Pad, size_divisor=32), dict(type=DefaultFormatBundle),
                dict(type=Collect, keys=["img", "gt_bboxes", "gt_labels", "gt_masks"])]
    cfg = dict(data=dict(train=dict(type=CocoDataset, ann_file=shapes_dataset["train_ann"],
                                    img_prefix=shapes_dataset["img_dir"] + "/",
                                    classes=shapes_dataset["classes"], pipeline=pipeline)))
    written = browse_dataset(cfg, str(tmp_path / "vis"), num=2, log=lambda s: None)
    assert len(written) == 2
    ann = json.load(open(shapes_dataset["train_ann"]))
    first = ann["images"][0]
    drawn = cv2.imread(written[0])
    assert drawn.shape == (150, 200, 3)  # img_shape: padding removed
    original = cv2.imread(os.path.join(shapes_dataset["img_dir"], first["file_name"]))
    reference = cv2.resize(original, (200, 150), interpolation=cv2.INTER_LINEAR).astype(np.int16)
    far = np.ones((150, 200), bool)  # away from boxes and their labels
    sx, sy = 200 / first["width"], 150 / first["height"]
    for a in ann["annotations"]:
        if a["image_id"] == first["id"]:
            x, y, w, h = a["bbox"]
            far[max(int(y * sy) - 25, 0):int((y + h) * sy) + 4, max(int(x * sx) - 4, 0):int((x + w) * sx) + 60] = False
    assert far.sum() > 2000
    diff = np.abs(drawn.astype(np.int16) - reference)[far]
    swapped = np.abs(drawn[:, :, ::-1].astype(np.int16) - reference)[far]
    assert np.median(diff) <= 3 and np.median(swapped) > 3 * max(np.median(diff), 1)
    # every box edge is drawn: its class colour appears where the hand-scaled box's left edge is
    boxes = [a for a in ann["annotations"] if a["image_id"] == first["id"] and not a.get("iscrowd")]
    a = boxes[0]
    x, y, w, h = a["bbox"]
    label = [c["id"] for c in ann["categories"]].index(a["category_id"])
    edge = drawn[int(round((y + h / 2) * sy)), int(round(x * sx))].astype(int)
    assert np.abs(edge - np.array(get_color(label))).max() < 60


def test_val_phase_and_command(shapes_dataset, tmp_path, capsys):
    cfg_path = tmp_path / "cfg.py"
    cfg_path.write_text(
        "from detzoo.data import CocoDataset\n"
        f"data = dict(val=dict(type=CocoDataset, ann_file={shapes_dataset['val_ann']!r}, "
        f"img_prefix={shapes_dataset['img_dir'] + '/'!r}, classes={tuple(shapes_dataset['classes'])!r}, "
        "pipeline=[]))\n")
    assert main(["browse-dataset", str(cfg_path), "--phase", "val", "--num", "3", "--not-show",
                 "--out-dir", str(tmp_path / "val")]) == 0
    files = sorted(os.listdir(tmp_path / "val"))
    ann = json.load(open(shapes_dataset["val_ann"]))
    assert files == sorted(im["file_name"] for im in ann["images"][:3])
    first = ann["images"][0]
    assert cv2.imread(str(tmp_path / "val" / first["file_name"])).shape[:2] == (first["height"], first["width"])
    assert "3 pictures written" in capsys.readouterr().out
    assert main(["browse-dataset", str(cfg_path), "--phase", "train", "--out-dir", str(tmp_path / "t")]) == 2
