"""Test helpers: a synthetic COCO ground truth, detections on it, and a direct-pycocotools
reference evaluation (the independent check for detzoo.evaluation)."""
import contextlib
import copy
import io

import numpy as np
import pycocotools.mask as mask_util
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from detzoo.structures import DetResult

from shared_paths import COCO_SAMPLE as _COCO_SAMPLE

COCO_SAMPLE = str(_COCO_SAMPLE)
# MMDetection's mapping of COCOeval.stats (mmdet/datasets/coco.py, 2.x), written out literally.
STAT_NAMES = ["mAP", "mAP_50", "mAP_75", "mAP_s", "mAP_m", "mAP_l",
              "AR@100", "AR@300", "AR@1000", "AR_s@1000", "AR_m@1000", "AR_l@1000"]


def coco_from_dict(dataset: dict) -> COCO:
    coco = COCO()
    coco.dataset = copy.deepcopy(dataset)
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def synthetic_gt_dict(seed: int = 0) -> dict:
    """6 images, 3 categories with non-contiguous ids, small/medium/large diamonds, a crowd
    region and an image without annotations."""
    rng = np.random.RandomState(seed)
    sizes = [(480, 640), (300, 300), (640, 480), (200, 320), (512, 512), (400, 600)]
    images = [dict(id=10 + i, file_name=f"img{i}.jpg", height=h, width=w)
              for i, (h, w) in enumerate(sizes)]
    categories = [dict(id=1, name="cat"), dict(id=5, name="dog"), dict(id=9, name="bird")]
    anns = []
    for img in images[:-1]:
        h, w = img["height"], img["width"]
        for _ in range(rng.randint(2, 7)):
            side = rng.choice([rng.uniform(10, 30), rng.uniform(40, 90), rng.uniform(100, 180)])
            bw, bh = side * rng.uniform(0.7, 1.3), side * rng.uniform(0.7, 1.3)
            bw, bh = min(bw, w - 2), min(bh, h - 2)
            x, y = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            cx, cy = x + bw / 2, y + bh / 2
            anns.append(dict(id=len(anns) + 1, image_id=img["id"],
                             category_id=int(rng.choice([1, 5, 9])), bbox=[x, y, bw, bh],
                             area=bw * bh / 2, iscrowd=0,
                             segmentation=[[cx, y, x + bw, cy, cx, y + bh, x, cy]]))
    # a crowd region in the first image
    anns.append(dict(id=len(anns) + 1, image_id=10, category_id=1, bbox=[400, 300, 200, 150],
                     area=30000.0, iscrowd=1,
                     segmentation=[[400, 300, 600, 300, 600, 450, 400, 450]]))
    return dict(images=images, annotations=anns, categories=categories)


def jittered_detections(gt: dict, seed: int = 1, with_masks: bool = False,
                        cat_ids=(1, 5, 9)):
    """Per image: (DetResult, boxes xyxy np, scores, labels, masks|None) with TPs, near misses,
    wrong labels and random false positives."""
    rng = np.random.RandomState(seed)
    out = {}
    for img in gt["images"]:
        h, w = img["height"], img["width"]
        boxes, labels = [], []
        for ann in gt["annotations"]:
            if ann["image_id"] != img["id"]:
                continue
            x, y, bw, bh = ann["bbox"]
            for _ in range(rng.randint(1, 3)):
                noise = rng.normal(0, 0.08, 4) * [bw, bh, bw, bh]
                boxes.append([x + noise[0], y + noise[1], x + bw + noise[2], y + bh + noise[3]])
                right = cat_ids.index(ann["category_id"])
                labels.append(right if rng.rand() < 0.8 else rng.randint(len(cat_ids)))
        for _ in range(rng.randint(1, 5)):
            x1, y1 = rng.uniform(0, w - 20), rng.uniform(0, h - 20)
            boxes.append([x1, y1, x1 + rng.uniform(5, w - x1), y1 + rng.uniform(5, h - y1)])
            labels.append(rng.randint(len(cat_ids)))
        boxes = np.clip(np.array(boxes, dtype=np.float32).reshape(-1, 4), 0, [w, h, w, h])
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
        scores = rng.uniform(0.05, 1, len(boxes)).astype(np.float32)
        order = np.argsort(-scores)
        boxes, scores, labels = boxes[order], scores[order], np.array(labels)[order]
        masks = None
        if with_masks:
            masks = np.zeros((len(boxes), h, w), dtype=bool)
            for k, (x1, y1, x2, y2) in enumerate(np.round(boxes).astype(int)):
                # an ellipse-ish blob: a box shrunk by a random margin
                mx, my = int((x2 - x1) * rng.uniform(0, 0.2)), int((y2 - y1) * rng.uniform(0, 0.2))
                masks[k, y1 + my:max(y2 - my, y1 + my + 1), x1 + mx:max(x2 - mx, x1 + mx + 1)] = 1
        result = DetResult(torch.from_numpy(boxes), torch.from_numpy(scores),
                           torch.from_numpy(labels.astype(np.int64)),
                           None if masks is None else torch.from_numpy(masks))
        out[img["id"]] = (result, boxes, scores, labels, masks)
    return out


def reference_dicts(dets_by_img, cat_ids=(1, 5, 9)):
    """COCO result dicts built independently of detzoo (one RLE per mask, as MMDetection 2.x)."""
    out = []
    for img_id, (_, boxes, scores, labels, masks) in dets_by_img.items():
        for k in range(len(boxes)):
            x1, y1, x2, y2 = [float(v) for v in boxes[k]]
            entry = dict(image_id=img_id, bbox=[x1, y1, x2 - x1, y2 - y1],
                         score=float(scores[k]), category_id=cat_ids[int(labels[k])])
            if masks is not None:
                rle = mask_util.encode(np.array(masks[k][:, :, None], order="F",
                                                dtype=np.uint8))[0]
                rle["counts"] = rle["counts"].decode()
                entry["segmentation"] = rle
            out.append(entry)
    return out


def reference_eval(coco_gt: COCO, dets: list, iou_type: str, max_dets=(100, 300, 1000),
                   use_cats: bool = True, drop: str = None) -> COCOeval:
    """pycocotools directly, with MMDetection's parameter choices (or others) spelled out."""
    preds = [{k: v for k, v in copy.deepcopy(d).items() if k != drop} for d in dets]
    with contextlib.redirect_stdout(io.StringIO()):
        coco_eval = COCOeval(coco_gt, coco_gt.loadRes(preds), iou_type)
        coco_eval.params.maxDets = list(max_dets)
        if not use_cats:
            coco_eval.params.useCats = 0
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return coco_eval


def expected_metrics(coco_eval: COCOeval, prefix: str, with_ap: bool = True) -> dict:
    names = STAT_NAMES if with_ap else STAT_NAMES[6:]
    offset = 0 if with_ap else 6
    return {f"{prefix}{n}": round(float(coco_eval.stats[i + offset]), 3)
            for i, n in enumerate(names)}
