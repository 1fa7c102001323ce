"""A small synthetic COCO-format dataset of coloured shapes, for quickstarts and smoke tests.

Each image has a textured background (a two-colour gradient in a random direction, random thin
lines, Gaussian noise) and 1..max_objects filled shapes (circle, square, triangle, star) of
varied size (12 px up to half the short image side), colour and rotation. Shapes are painted in
order, so later shapes occlude earlier ones; a placement that would leave an earlier shape
less than half visible is rejected and redrawn elsewhere.

Annotations describe the *visible* part (modal, as COCO does): the mask is what remains of a
shape after occlusion; bbox is the pixel extent of that mask ([x, y, w, h] covering whole pixels);
area is its pixel count; segmentation holds the outer contours of the visible mask as polygons
(cv2.findContours), so a hole punched by a shape lying entirely inside another is not
represented in the polygon. iscrowd is always 0.

``make_shapes_voc`` (or ``make_shapes_dataset(..., voc=True)``) also writes a Pascal VOC copy
(``VOCdevkit/VOC2007``: Annotations/*.xml, JPEGImages/, ImageSets/Main/{train,val}.txt) of the
same images and boxes, for the VOC-format configs.

Deterministic: each image is drawn from its own generator seeded with (seed, split, index), so
the same seed writes byte-identical files (and changing num_train does not change val).
"""
from __future__ import annotations

import json
import os
import os.path as osp

import cv2
import numpy as np

from detzoo.utils.fileio import atomic_write_bytes

CLASSES = ("circle", "square", "triangle", "star")
_MIN_SIZE = 12           # smallest shape diameter in pixels
_MIN_VISIBLE = 0.5       # an occluded shape keeps at least this fraction of its area
_MIN_AREA = 40           # smallest full-shape area in pixels
_JPEG_QUALITY = 95


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    c0, c1 = rng.uniform(0, 255, size=(2, 3)).astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    t = (np.arange(width, dtype=np.float32)[None, :] * np.float32(np.cos(angle))
         + np.arange(height, dtype=np.float32)[:, None] * np.float32(np.sin(angle)))
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    img = (c0 + (c1 - c0) * t[..., None]).astype(np.uint8)  # both ends are in [0, 255]
    for _ in range(int(rng.integers(0, 7))):
        p0 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        p1 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        color = tuple(int(c) for c in rng.integers(0, 256, size=3))
        cv2.line(img, p0, p1, color, int(rng.integers(1, 3)), lineType=cv2.LINE_AA)
    return img


def _shape_mask(rng: np.random.Generator, label: int, height: int, width: int):
    """One random shape of class ``label`` lying fully inside the image: (bool mask crop,
    (row slice, column slice) of the crop in the image)."""
    diameter = float(np.exp(rng.uniform(np.log(_MIN_SIZE), np.log(min(height, width) / 2))))
    radius = diameter / 2
    cx = rng.uniform(radius, width - radius)
    cy = rng.uniform(radius, height - radius)
    rotation = rng.uniform(0, 2 * np.pi)
    x0, y0 = max(int(cx - radius) - 1, 0), max(int(cy - radius) - 1, 0)
    x1, y1 = min(int(cx + radius) + 2, width), min(int(cy + radius) + 2, height)
    crop = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
    name = CLASSES[label]
    if name == "circle":
        cv2.circle(crop, (int(round(cx)) - x0, int(round(cy)) - y0), int(round(radius)), 1, -1)
        return crop.astype(bool), (slice(y0, y1), slice(x0, x1))
    if name == "square":
        angles = rotation + np.pi / 4 + np.arange(4) * np.pi / 2
        radii = np.full(4, radius * 0.85)
    elif name == "triangle":
        angles = rotation + np.arange(3) * 2 * np.pi / 3
        radii = np.full(3, radius)
    else:  # star: 5 outer and 5 inner vertices
        angles = rotation + np.arange(10) * np.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, radius, radius * 0.45)
    points = np.stack([cx - x0 + radii * np.cos(angles), cy - y0 + radii * np.sin(angles)], 1)
    cv2.fillPoly(crop, [np.round(points).astype(np.int32)], 1)
    return crop.astype(bool), (slice(y0, y1), slice(x0, x1))


def _contrasting_color(rng: np.random.Generator, pixels: np.ndarray) -> np.ndarray:
    under = pixels.astype(np.float32).mean(axis=0)
    color = rng.integers(0, 256, size=3)
    for _ in range(10):
        if np.abs(color - under).sum() >= 120:
            break
        color = rng.integers(0, 256, size=3)
    return color.astype(np.uint8)


def _draw_image(rng: np.random.Generator, height: int, width: int, max_objects: int):
    """Image and its objects: list of (label, visible bool mask HxW)."""
    img = _background(rng, height, width)
    labels, visible, visible_area, full_area = [], [], [], []
    wanted = int(rng.integers(1, max_objects + 1))
    for _ in range(wanted * 5):
        if len(labels) == wanted:
            break
        label = int(rng.integers(len(CLASSES)))
        crop, region = _shape_mask(rng, label, height, width)
        area = int(crop.sum())
        if area < _MIN_AREA:
            continue
        covered = [int((vis[region] & crop).sum()) for vis in visible]
        if any(v - c < _MIN_VISIBLE * f for v, c, f in zip(visible_area, covered, full_area)):
            continue
        patch = img[region]
        patch[crop] = _contrasting_color(rng, patch[crop])
        for k, vis in enumerate(visible):
            vis[region] &= ~crop
            visible_area[k] -= covered[k]
        mask = np.zeros((height, width), dtype=bool)
        mask[region] = crop
        labels.append(label)
        visible.append(mask)
        visible_area.append(area)
        full_area.append(area)
    noise = rng.standard_normal(img.shape, dtype=np.float32) * np.float32(rng.uniform(2, 8))
    img = np.clip(img + noise, 0, 255).astype(np.uint8)
    return img, list(zip(labels, visible))


def _annotation(vis: np.ndarray, with_masks: bool) -> dict | None:
    ys, xs = np.nonzero(vis)
    if len(xs) == 0:
        return None
    x0, y0 = int(xs.min()), int(ys.min())
    ann = dict(bbox=[float(x0), float(y0), float(xs.max() + 1 - x0), float(ys.max() + 1 - y0)],
               area=float(len(xs)), iscrowd=0)
    if with_masks:
        contours, _ = cv2.findContours(vis.astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_SIMPLE)
        polygons = [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]
        if not polygons:
            return None
        ann["segmentation"] = polygons
    return ann


def _write_split(out_dir: str, img_dir: str, split: str, split_code: int, num: int, seed: int,
                 size_range, with_masks: bool, max_objects: int) -> str:
    images, annotations = [], []
    for i in range(num):
        rng = np.random.default_rng((seed, split_code, i))
        height, width = (int(v) for v in rng.integers(size_range[0], size_range[1] + 1, size=2))
        img, objects = _draw_image(rng, height, width, max_objects)
        file_name = f"{split}_{i:05d}.jpg"
        ok, encoded = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
        if not ok:
            raise RuntimeError(f"cv2 could not encode {file_name}")
        atomic_write_bytes(osp.join(img_dir, file_name), encoded.tobytes())
        image_id = i + 1
        images.append(dict(id=image_id, file_name=file_name, width=width, height=height))
        for label, vis in objects:
            ann = _annotation(vis, with_masks)
            if ann is not None:
                annotations.append(dict(id=len(annotations) + 1, image_id=image_id,
                                        category_id=label + 1, **ann))
    coco = dict(images=images, annotations=annotations,
                categories=[dict(id=k + 1, name=name, supercategory="shape")
                            for k, name in enumerate(CLASSES)])
    ann_file = osp.join(out_dir, f"{split}.json")
    atomic_write_bytes(ann_file, json.dumps(coco).encode("utf-8"))
    return ann_file


def make_shapes_dataset(out_dir: str, num_train: int = 400, num_val: int = 100,
                        img_size_range: tuple[int, int] = (240, 320), seed: int = 0,
                        with_masks: bool = True, max_objects: int = 6, voc: bool = False) -> dict:
    """Write the shapes dataset under ``out_dir`` and return where it is.

    Images (JPEG, quality 95) go to ``out_dir/images`` as ``train_00000.jpg``/``val_...``;
    each image's height and width are drawn independently from ``img_size_range`` (so both
    aspect-ratio groups occur). Returns dict(train_ann, val_ann, img_dir, classes).
    ``voc=True`` also writes the same images and boxes in Pascal VOC layout (see
    :func:`write_voc_copy`) and adds its paths: voc_img_prefix, voc_train_ann, voc_val_ann.
    """
    img_dir = osp.join(out_dir, "images")
    os.makedirs(img_dir, exist_ok=True)
    common = dict(seed=seed, size_range=img_size_range, with_masks=with_masks,
                  max_objects=max_objects)
    train_ann = _write_split(out_dir, img_dir, "train", 0, num_train, **common)
    val_ann = _write_split(out_dir, img_dir, "val", 1, num_val, **common)
    out = dict(train_ann=train_ann, val_ann=val_ann, img_dir=img_dir, classes=CLASSES)
    if voc:
        out.update(write_voc_copy(out_dir, {"train": train_ann, "val": val_ann}, img_dir))
    return out


def make_shapes_voc(out_dir: str, num_train: int = 400, num_val: int = 100,
                    img_size_range: tuple[int, int] = (240, 320), seed: int = 0,
                    max_objects: int = 6, with_masks: bool = True) -> dict:
    """The shapes dataset in COCO and in Pascal VOC layout: ``make_shapes_dataset(voc=True)``.

    For a VOC config: ``data.train.ann_file = out['voc_train_ann']`` and
    ``data.train.img_prefix = out['voc_img_prefix']`` (a ``VOC2007`` folder, so VOCDataset
    evaluates with the VOC2007 11-point AP), and the same with ``voc_val_ann`` for val/test.
    """
    return make_shapes_dataset(out_dir, num_train=num_train, num_val=num_val,
                               img_size_range=img_size_range, seed=seed, with_masks=with_masks,
                               max_objects=max_objects, voc=True)


def _voc_xml(file_name: str, width: int, height: int, objects: list) -> str:
    parts = ["<annotation>", "\t<folder>VOC2007</folder>", f"\t<filename>{file_name}</filename>",
             "\t<source>", "\t\t<database>detzoo synthetic shapes</database>", "\t</source>",
             "\t<size>", f"\t\t<width>{width}</width>", f"\t\t<height>{height}</height>",
             "\t\t<depth>3</depth>", "\t</size>", "\t<segmented>0</segmented>"]
    for name, (xmin, ymin, xmax, ymax) in objects:
        parts += ["\t<object>", f"\t\t<name>{name}</name>", "\t\t<pose>Unspecified</pose>",
                  "\t\t<truncated>0</truncated>", "\t\t<difficult>0</difficult>", "\t\t<bndbox>",
                  f"\t\t\t<xmin>{xmin}</xmin>", f"\t\t\t<ymin>{ymin}</ymin>",
                  f"\t\t\t<xmax>{xmax}</xmax>", f"\t\t\t<ymax>{ymax}</ymax>", "\t\t</bndbox>",
                  "\t</object>"]
    return "\n".join(parts + ["</annotation>", ""])


def write_voc_copy(out_dir: str, split_anns: dict, img_dir: str) -> dict:
    """Write ``out_dir/VOCdevkit/VOC2007`` from the COCO files of ``split_anns`` ({split: json}).

    Image ids are the COCO file stems (``train_00000``); JPEGImages holds byte copies of the
    COCO images; ImageSets/Main/<split>.txt lists each split's ids. A COCO box [x, y, w, h] of
    whole pixels covers columns x .. x + w - 1, which VOC numbers from 1:
    xmin = x + 1, xmax = x + w (likewise for y), so ``VOCDataset`` loads [x, y, x + w - 1, y + h - 1].
    Returns dict(voc_img_prefix, voc_<split>_ann for each split).
    """
    root = osp.join(out_dir, "VOCdevkit", "VOC2007")
    for sub in ("Annotations", "JPEGImages", osp.join("ImageSets", "Main")):
        os.makedirs(osp.join(root, sub), exist_ok=True)
    out = dict(voc_img_prefix=root + os.sep)
    for split, ann_file in split_anns.items():
        with open(ann_file, "r", encoding="utf-8") as f:
            coco = json.load(f)
        names = {cat["id"]: cat["name"] for cat in coco["categories"]}
        objects = {img["id"]: [] for img in coco["images"]}
        for ann in coco["annotations"]:
            x, y, w, h = (int(round(v)) for v in ann["bbox"])
            objects[ann["image_id"]].append((names[ann["category_id"]], (x + 1, y + 1, x + w, y + h)))
        ids = []
        for img in coco["images"]:
            stem = osp.splitext(img["file_name"])[0]
            ids.append(stem)
            with open(osp.join(img_dir, img["file_name"]), "rb") as f:
                atomic_write_bytes(osp.join(root, "JPEGImages", f"{stem}.jpg"), f.read())
            xml = _voc_xml(f"{stem}.jpg", img["width"], img["height"], objects[img["id"]])
            atomic_write_bytes(osp.join(root, "Annotations", f"{stem}.xml"), xml.encode("utf-8"))
        set_file = osp.join(root, "ImageSets", "Main", f"{split}.txt")
        atomic_write_bytes(set_file, "".join(f"{i}\n" for i in ids).encode("utf-8"))
        out[f"voc_{split}_ann"] = set_file
    return out
