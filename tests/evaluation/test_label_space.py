"""Models whose labels are not the dataset's contiguous indices: torchvision's 91-entry COCO list
(label = COCO category id, '__background__' at 0, 'N/A' gaps) evaluated on a COCO-style dataset.

The reference is pycocotools fed torchvision's own convention directly (category_id = label,
every detection, placeholder labels included: COCOeval only scores the ground truth's
categories), written here without detzoo's mapping."""
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from coco_helpers import coco_from_dict, expected_metrics, reference_eval
from detzoo.apis.test import evaluate_detector, save_results
from detzoo.data import CocoDataset
from detzoo.data.class_names import COCO_CLASSES
from detzoo.errors import DataError
from detzoo.evaluation import CocoEvaluator
from detzoo.evaluation.results_io import label_to_cat_ids, result_to_coco_json
from detzoo.models.torchvision_compat import TORCHVISION_COCO_CATEGORIES as TV
from detzoo.structures import DetResult
import pycocotools.mask as mask_util

# COCO 2017's 80 category ids, in its file order (ids 12, 26, 29, 30, 45, 66, 68, 69, 71, 83 unused)
COCO_IDS = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]
# the synthetic ground truth uses three real COCO categories with their real ids
CATS = [dict(id=1, name="person"), dict(id=3, name="car"), dict(id=90, name="toothbrush")]
TV_LABELS = (1, 3, 90)  # torchvision labels of those classes: the ids themselves
SIZES = [(240, 320), (300, 300), (320, 240), (200, 260)]


def gt_dict(seed=0):
    rng = np.random.RandomState(seed)
    images = [dict(id=100 + i, file_name=f"i{i}.jpg", height=h, width=w) for i, (h, w) in enumerate(SIZES)]
    anns = []
    for img in images:
        for _ in range(rng.randint(2, 5)):
            bw, bh = rng.uniform(20, 110, 2)
            x, y = rng.uniform(0, img["width"] - bw), rng.uniform(0, img["height"] - bh)
            anns.append(dict(id=len(anns) + 1, image_id=img["id"], category_id=int(rng.choice([1, 3, 90])),
                             bbox=[x, y, bw, bh], area=bw * bh, iscrowd=0))
    return dict(images=images, annotations=anns, categories=CATS)


@pytest.fixture
def dataset(tmp_path):
    gt = gt_dict()
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(gt))
    return gt, CocoDataset(str(path), pipeline=(), test_mode=True)


def torchvision_results(gt, perturb, seed=1):
    """Per image a DetResult in torchvision's label space, and the same detections as the COCO
    entries torchvision's evaluation writes (category_id = label)."""
    rng = np.random.RandomState(seed)
    results, reference = [], []
    for img in gt["images"]:
        boxes, labels = [], []
        for ann in (a for a in gt["annotations"] if a["image_id"] == img["id"]):
            x, y, w, h = ann["bbox"]
            noise = rng.normal(0, 0.1, 4) * [w, h, w, h] if perturb else np.zeros(4)
            boxes.append([x + noise[0], y + noise[1], x + w + noise[2], y + h + noise[3]])
            labels.append(ann["category_id"])
            if perturb and rng.rand() < 0.4:  # a confusion: another real class
                boxes.append(boxes[-1])
                labels.append(int(rng.choice([c for c in TV_LABELS if c != ann["category_id"]])))
        # torchvision's RetinaNet/FCOS can score background (0); 'N/A' ids (12, 83) stand for no class
        for placeholder in (0, 12, 83):
            boxes.append([5.0, 5.0, 60.0, 50.0])
            labels.append(placeholder)
        scores = rng.uniform(0.3, 1.0, len(boxes))
        scores[-3:] = 0.02
        boxes = np.asarray(boxes, dtype=np.float32)
        results.append(DetResult(torch.from_numpy(boxes), torch.from_numpy(scores.astype(np.float32)),
                                 torch.tensor(labels, dtype=torch.long)))
        for b, s, l in zip(boxes.tolist(), scores.astype(np.float32).tolist(), labels):
            reference.append(dict(image_id=img["id"], category_id=l, score=s,
                                  bbox=[b[0], b[1], b[2] - b[0], b[3] - b[1]]))
    return results, reference


def test_torchvision_labels_map_by_name_to_the_real_coco_ids():
    got = label_to_cat_ids(TV, COCO_CLASSES, COCO_IDS)
    assert len(got) == 91
    for label, name in enumerate(TV):
        assert got[label] == (None if name in ("__background__", "N/A") else label), (label, name)
    # same names as the dataset: MMDetection's contiguous index -> the dataset's label-th id
    assert label_to_cat_ids(COCO_CLASSES, COCO_CLASSES, COCO_IDS) == COCO_IDS
    assert label_to_cat_ids(None, ("person", "car"), [1, 3]) == [1, 3]


@pytest.mark.parametrize("perturb", [False, True])
def test_evaluate_detector_with_torchvision_labels(dataset, perturb, tmp_path):
    gt, ds = dataset
    model = SimpleNamespace(class_names=TV)
    results, reference = torchvision_results(gt, perturb)
    out = tmp_path / "dets.json"
    metrics = evaluate_detector(model, ds, "bbox", results=results, out_file=str(out),
                                distributed=False)
    want = expected_metrics(reference_eval(coco_from_dict(gt), reference, "bbox"), "bbox_")
    for key, value in want.items():
        assert metrics[key] == pytest.approx(value, abs=1e-3), key
    if not perturb:
        assert metrics["bbox_mAP"] == 1.0 and want["bbox_mAP"] == 1.0
    else:
        assert 0.2 < metrics["bbox_mAP"] < 0.99  # the perturbation matters: not a trivial 1.0
    written = json.loads(out.read_text())
    real = [d for d in reference if d["category_id"] in TV_LABELS]
    assert len(written) == len(real)  # placeholder detections are left out
    assert sorted(d["category_id"] for d in written) == sorted(d["category_id"] for d in real)


def test_save_results_writes_label_as_category_id(dataset, tmp_path):
    gt, ds = dataset
    results, reference = torchvision_results(gt, perturb=True)
    path = tmp_path / "r.json"
    save_results(str(path), results, ds, class_names=TV)
    written = json.loads(path.read_text())
    real = [d for d in reference if d["category_id"] in TV_LABELS]
    assert [(d["image_id"], d["category_id"]) for d in written] == [(d["image_id"], d["category_id"]) for d in real]
    for w, r in zip(written, real):
        assert w["bbox"] == pytest.approx(r["bbox"], abs=1e-4)


def test_a_model_with_the_dataset_names_keeps_contiguous_labels(dataset):
    gt, ds = dataset
    assert ds.CLASSES == ("person", "car", "toothbrush")
    results, reference = torchvision_results(gt, perturb=True)
    contiguous = []
    for r in results:  # the same detections with 0-based dataset labels (placeholders dropped)
        keep = torch.tensor([int(l) in TV_LABELS for l in r.labels])
        labels = torch.tensor([TV_LABELS.index(int(l)) for l in r.labels[keep]])
        contiguous.append(DetResult(r.boxes[keep], r.scores[keep], labels))
    got = evaluate_detector(SimpleNamespace(class_names=ds.CLASSES), ds, "bbox", results=contiguous,
                            distributed=False)
    want = evaluate_detector(SimpleNamespace(class_names=TV), ds, "bbox", results=results,
                             distributed=False)
    assert got == want


def test_a_predicted_class_the_dataset_lacks_is_an_error(dataset):
    gt, ds = dataset
    evaluator = CocoEvaluator.from_dataset(ds, class_names=TV, print_fn=None)
    bicycle = DetResult(torch.tensor([[0.0, 0.0, 10.0, 10.0]]), torch.tensor([0.9]), torch.tensor([2]))
    with pytest.raises(DataError, match=r"image 100: predicted label 2 \('bicycle'\) is not a category"):
        evaluator.process([dict(img_id=100)], [bicycle])
    # generic names sharing no name with the dataset: positions, as MMDetection assumes, when the
    # counts agree; otherwise the label has no category
    assert label_to_cat_ids(("class_0", "class_1", "class_2"), ds.CLASSES, ds.cat_ids) == list(ds.cat_ids)
    generic4 = CocoEvaluator.from_dataset(ds, class_names=("class_0", "class_1", "class_2", "class_3"),
                                          print_fn=None)
    with pytest.raises(DataError, match="'class_1'"):
        generic4.process([dict(img_id=100)], [DetResult(bicycle.boxes, bicycle.scores, torch.tensor([1]))])


def test_masks_of_dropped_placeholders_do_not_shift():
    h, w = 20, 30
    masks = torch.zeros(3, h, w, dtype=torch.bool)
    masks[0, 2:5, 3:9] = True
    masks[1, 0:20, 0:2] = True  # background detection: dropped
    masks[2, 10:18, 12:29] = True
    result = DetResult(torch.tensor([[3.0, 2, 9, 5], [0, 0, 2, 20], [12, 10, 29, 18]]),
                       torch.tensor([0.9, 0.5, 0.4]), torch.tensor([1, 0, 90]), masks)
    entries = result_to_coco_json(result, 7, label_to_cat_ids(TV, COCO_CLASSES, COCO_IDS), class_names=TV)
    assert [e["category_id"] for e in entries] == [1, 90]
    for entry, k in zip(entries, (0, 2)):
        rle = mask_util.encode(np.asfortranarray(masks[k].numpy().astype(np.uint8)))
        assert entry["segmentation"]["counts"] == rle["counts"].decode()
