"""Proposals in the data pipeline: LoadProposals, geometric steps, CocoDataset(proposal_file)."""
import json

import numpy as np
import pytest
import torch

from detzoo.data import CocoDataset, collate
from detzoo.data.transforms import (Collect, Compose, DefaultFormatBundle, LoadProposals, MultiScaleFlipAug,
                                    Pad, RandomFlip, Resize)
from detzoo.errors import DataError
from detzoo.evaluation import save_proposals

BOXES = np.array([[10, 20, 110, 70, 0.9], [0, 0, 200, 100, 0.8], [150, 5, 199, 99, 0.7]], dtype=np.float32)


def _results(proposals, h=100, w=200):
    img = np.zeros((h, w, 3), dtype=np.uint8)
    return dict(img=img, img_shape=img.shape, ori_shape=img.shape, pad_shape=img.shape, img_fields=["img"],
                proposals=proposals, gt_bboxes=proposals[:, :4].copy(), bbox_fields=["gt_bboxes"],
                filename="x.jpg", img_id=1)


def test_load_proposals_keeps_first_boxes_without_scores_and_copies():
    source = BOXES.copy()
    out = LoadProposals(num_max_proposals=2)(_results(source))
    assert out["proposals"].dtype == np.float32 and out["proposals"].tolist() == BOXES[:2, :4].tolist()
    assert out["bbox_fields"] == ["gt_bboxes", "proposals"]
    out["proposals"][:] = -1
    assert np.array_equal(source, BOXES)  # the dataset's array is never modified
    assert LoadProposals()(_results(BOXES.copy()))["proposals"].shape == (3, 4)
    empty = LoadProposals()(_results(np.zeros((0, 5), np.float32)))
    assert empty["proposals"].tolist() == [[0, 0, 0, 0]]  # mmdet: one dummy box


def test_load_proposals_errors():
    results = _results(BOXES.copy())
    del results["proposals"]
    with pytest.raises(DataError, match="proposal_file"):
        LoadProposals()(results)
    with pytest.raises(DataError, match=r"x.jpg.*\(3, 3\)"):
        LoadProposals()(_results(BOXES[:, :3].copy()))


@pytest.mark.parametrize("direction", ["horizontal", "vertical"])
def test_resize_and_flip_move_proposals_like_gt_boxes(direction):
    pipeline = Compose([dict(type=LoadProposals), dict(type=Resize, img_scale=(300, 120), keep_ratio=True),
                        dict(type=RandomFlip, flip_ratio=1.0, direction=direction)])
    out = pipeline(_results(BOXES.copy()))
    # hand computation: scale min(300/200, 120/100) = 1.2 -> 240x120, then mirror
    scaled = BOXES[:, :4] * 1.2
    if direction == "horizontal":
        expected = np.stack([240 - scaled[:, 2], scaled[:, 1], 240 - scaled[:, 0], scaled[:, 3]], 1)
    else:
        expected = np.stack([scaled[:, 0], 120 - scaled[:, 3], scaled[:, 2], 120 - scaled[:, 1]], 1)
    np.testing.assert_allclose(out["proposals"], expected, atol=1e-4)
    np.testing.assert_array_equal(out["proposals"], out["gt_bboxes"])


def test_test_time_pipeline_batches_proposals_as_tensors():
    pipeline = Compose([dict(type=LoadProposals), dict(type=MultiScaleFlipAug, img_scale=(100, 50), transforms=[
        dict(type=Resize, keep_ratio=True), dict(type=RandomFlip), dict(type=Pad, size_divisor=32),
        dict(type=DefaultFormatBundle), dict(type=Collect, keys=["img", "proposals"])])])
    small = np.array([[5, 6, 40, 30, 1.0]], dtype=np.float32)
    batch = collate([pipeline(_results(BOXES.copy())), pipeline(_results(small.copy(), h=50, w=80))])
    assert isinstance(batch["proposals"], list) and len(batch["proposals"]) == 2
    first, second = batch["proposals"]
    assert isinstance(first, torch.Tensor) and first.shape == (3, 4) and second.shape == (1, 4)
    # 200x100 -> 100x50 (factor 0.5); 80x50 -> 80x50 (factor 1)
    assert torch.allclose(first, torch.from_numpy(BOXES[:, :4]) * 0.5)
    assert torch.allclose(second, torch.from_numpy(small[:, :4]))


def _coco(tmp_path, sizes, annotated):
    images = [dict(id=10 + i, file_name=f"{i}.jpg", width=w, height=h) for i, (w, h) in enumerate(sizes)]
    anns = [dict(id=i + 1, image_id=10 + i, category_id=1, bbox=[1, 1, 10, 10], area=100, iscrowd=0)
            for i in annotated]
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(dict(images=images, annotations=anns, categories=[dict(id=1, name="thing")])))
    return str(path)


def test_dataset_proposals_follow_the_image_filter(tmp_path):
    # image 1 has no annotation and image 2 is smaller than min_size: training drops both
    ann = _coco(tmp_path, [(100, 80), (100, 80), (20, 80), (90, 70)], annotated=[0, 2, 3])
    arrays = [np.full((2, 5), i, dtype=np.float32) for i in range(4)]
    save_proposals(tmp_path / "p.pkl", arrays)
    train = CocoDataset(ann, "", pipeline=[], proposal_file=str(tmp_path / "p.pkl"))
    assert train.img_ids == [10, 13]
    assert [float(p[0, 0]) for p in train.proposals] == [0.0, 3.0]
    assert float(train.prepare(1)["proposals"][0, 0]) == 3.0
    test = CocoDataset(ann, "", pipeline=[], test_mode=True, proposal_file=str(tmp_path / "p.pkl"))
    assert [float(p[0, 0]) for p in test.proposals] == [0.0, 1.0, 2.0, 3.0]
    assert "proposals" not in CocoDataset(ann, "", pipeline=[], test_mode=True).prepare(0)


def test_dataset_rejects_proposal_file_of_wrong_length(tmp_path):
    ann = _coco(tmp_path, [(100, 80)] * 3, annotated=[0, 1, 2])
    save_proposals(tmp_path / "short.json", [np.zeros((1, 5), np.float32)] * 2)
    with pytest.raises(DataError) as info:
        CocoDataset(ann, "", pipeline=[], proposal_file=str(tmp_path / "short.json"))
    message = str(info.value)
    assert "short.json" in message and "2 images" in message and "3 images" in message
    with pytest.raises(DataError, match="not found"):
        CocoDataset(ann, "", pipeline=[], proposal_file=str(tmp_path / "missing.pkl"))
