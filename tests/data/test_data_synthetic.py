"""The synthetic shapes dataset: determinism and annotation consistency."""
import hashlib
import json
import os
import warnings

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from detzoo.data import CocoDataset, make_shapes_dataset


def _hashes(root):
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return out


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a = _hashes(make_shapes_dataset(str(tmp_path / "a"), 12, 4, seed=5)["img_dir"] + "/..")
    b = _hashes(make_shapes_dataset(str(tmp_path / "b"), 12, 4, seed=5)["img_dir"] + "/..")
    c = _hashes(make_shapes_dataset(str(tmp_path / "c"), 12, 4, seed=6)["img_dir"] + "/..")
    assert len(a) == 12 + 4 + 2 and a == b
    assert all(a[k] != c[k] for k in a)
    assert not any(name.startswith(".tmp_") for name in a)


def test_annotations_are_consistent(tmp_path):
    info = make_shapes_dataset(str(tmp_path), num_train=30, num_val=5, seed=0,
                               img_size_range=(240, 320))
    data = json.load(open(info["train_ann"]))
    assert [c["name"] for c in data["categories"]] == list(info["classes"])
    sizes = {(im["height"], im["width"]) for im in data["images"]}
    assert all(240 <= h <= 320 and 240 <= w <= 320 for h, w in sizes)
    assert any(w > h for h, w in sizes) and any(w <= h for h, w in sizes)
    images = {im["id"]: im for im in data["images"]}
    img0 = cv2.imread(os.path.join(info["img_dir"], data["images"][0]["file_name"]))
    assert img0.shape[:2] == (data["images"][0]["height"], data["images"][0]["width"])
    widths = []
    for ann in data["annotations"]:
        x, y, w, h = ann["bbox"]
        assert ann["iscrowd"] == 0 and ann["area"] > 0 and ann["area"] <= w * h
        for poly in ann["segmentation"]:
            xs, ys = np.array(poly[0::2]), np.array(poly[1::2])
            assert len(poly) >= 6
            assert xs.min() >= x and xs.max() <= x + w and ys.min() >= y and ys.max() <= y + h
        im = images[ann["image_id"]]
        assert x >= 0 and y >= 0 and x + w <= im["width"] and y + h <= im["height"]
        # the polygon raster covers most of the visible mask that the area counts
        rle = mask_utils.merge(mask_utils.frPyObjects(ann["segmentation"], im["height"],
                                                      im["width"]))
        assert 0.5 * ann["area"] <= mask_utils.area(rle) <= 1.05 * ann["area"]
        widths.append(max(w, h))
    assert min(widths) < 24 and max(widths) > 100  # small and large objects
    counts = np.bincount([a["category_id"] for a in data["annotations"]], minlength=5)[1:]
    assert (counts > 0).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = CocoDataset(info["train_ann"], info["img_dir"], [])
    assert len(ds) == 30  # no image is empty


def test_without_masks_has_no_segmentation(tmp_path):
    info = make_shapes_dataset(str(tmp_path), num_train=3, num_val=1, with_masks=False)
    anns = json.load(open(info["val_ann"]))["annotations"]
    assert anns and all("segmentation" not in a for a in anns)
