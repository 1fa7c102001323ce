"""Mask R-CNN and Cascade Mask R-CNN end to end on generated shapes: the mask branch learns (its
loss falls when overfitting two images), bitmap and polygon annotations give the same training
signal, and predictions carry masks of the original image's size that lie inside their boxes."""
import copy
import os

import pytest
import torch

from detzoo.config import instantiate, load_config
from detzoo.data import build_dataloader
from detzoo.data.transforms import LoadAnnotations
from detzoo.engine.trainer import move_to_device
from detzoo.models.builder import build_detector


def _config(shapes_dataset, name="mask_rcnn_r18_fpn_quickstart", poly2mask=True):
    cfg = load_config(name)
    cfg.merge_from_dotted({"data.train.ann_file": shapes_dataset["train_ann"],
                           "data.train.img_prefix": shapes_dataset["img_dir"] + os.sep,
                           "data.test.ann_file": shapes_dataset["val_ann"],
                           "data.test.img_prefix": shapes_dataset["img_dir"] + os.sep})
    for step in cfg["data"]["train"]["pipeline"]:
        if step["type"] is LoadAnnotations:
            step["poly2mask"] = poly2mask
    return cfg


def _first_batch(cfg, n=2):
    train_cfg = copy.deepcopy(dict(cfg["data"]["train"]))
    for step in train_cfg["pipeline"]:
        if step["type"].__name__ == "RandomFlip":
            step["flip_ratio"] = 0.0
    dataset = instantiate(train_cfg)
    loader = build_dataloader(dataset, n, 0, shuffle=False, dist=False, seed=0)
    return next(iter(loader))


def _overfit(model, batch, steps):
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    history = []
    for _ in range(steps):
        losses = model.loss(batch)
        total = sum(v for k, v in losses.items() if "loss" in k)
        opt.zero_grad()
        total.backward()
        opt.step()
        history.append({k: float(v.detach()) for k, v in losses.items()})
    return history


def test_mask_branch_learns_and_predicts_masks_in_boxes(shapes_dataset):
    cfg = _config(shapes_dataset)
    batch = _first_batch(cfg, n=1)
    masks, img = batch["gt_masks"][0], batch["img"][0]
    assert masks.dtype == torch.uint8 and masks.shape[0] == batch["gt_bboxes"][0].shape[0]
    assert masks.shape[-2] <= img.shape[-2] and masks.shape[-1] <= img.shape[-1]
    torch.manual_seed(0)
    model = build_detector(cfg["model"], class_names=("circle", "square", "triangle", "star"))
    model.train()
    history = _overfit(model, batch, 25)
    first = sum(h["loss_mask"] for h in history[:3]) / 3
    last = sum(h["loss_mask"] for h in history[-3:]) / 3
    assert first > 0.5  # ~log 2 at the start: the head knows nothing
    assert last < 0.6 * first

    model.eval()
    with torch.no_grad():
        results = model.predict(batch["img"], batch["img_metas"], rescale=True)
    for result, meta in zip(results, batch["img_metas"]):
        h, w = meta["ori_shape"][:2]
        assert result.masks is not None and result.masks.dtype == torch.bool
        assert tuple(result.masks.shape) == (len(result), h, w)
        # a pasted mask never reaches further than one pixel outside its box
        for box, mask in zip(result.boxes[:10], result.masks[:10]):
            ys, xs = mask.nonzero(as_tuple=True)
            if len(xs):
                assert xs.min() >= box[0].floor() - 1 and xs.max() <= box[2].ceil() + 1
                assert ys.min() >= box[1].floor() - 1 and ys.max() <= box[3].ceil() + 1


def test_polygon_and_bitmap_annotations_give_the_same_mask_loss(shapes_dataset):
    losses = []
    for poly2mask in (True, False):
        cfg = _config(shapes_dataset, poly2mask=poly2mask)
        batch = _first_batch(cfg)
        assert isinstance(batch["gt_masks"][0], torch.Tensor) == poly2mask
        torch.manual_seed(0)
        model = build_detector(cfg["model"], class_names=("circle", "square", "triangle", "star"))
        model.train()
        torch.manual_seed(1)
        losses.append(float(model.loss(batch)["loss_mask"]))
    # the two rasterisations differ only along the object borders
    assert losses[0] == pytest.approx(losses[1], rel=0.05)


def test_cascade_mask_rcnn_trains_all_stages_and_averages_masks(shapes_dataset):
    cfg = _config(shapes_dataset, name="cascade_rcnn_r18_fpn_quickstart")
    mask_cfg = _config(shapes_dataset)
    cfg["data"] = mask_cfg["data"]
    roi = cfg["model"]["roi_head"]
    roi["mask_roi_extractor"] = mask_cfg["model"]["roi_head"]["mask_roi_extractor"]
    roi["mask_head"] = mask_cfg["model"]["roi_head"]["mask_head"]
    for stage in cfg["model"]["train_cfg"]["rcnn"]:
        stage["mask_size"] = 28
    cfg["model"]["test_cfg"]["rcnn"]["mask_thr_binary"] = 0.5
    torch.manual_seed(0)
    model = build_detector(cfg["model"], class_names=("circle", "square", "triangle", "star"))
    batch = _first_batch(cfg)
    model.train()
    losses = model.loss(batch)
    for stage in range(3):
        assert torch.isfinite(losses[f"s{stage}.loss_mask"])
    model.eval()
    with torch.no_grad():
        feats = model.extract_feat(batch["img"])
        proposals = model.rpn_head.simple_test_rpn(feats, batch["img_metas"])
        results = model.roi_head.simple_test(feats, proposals, batch["img_metas"], rescale=True)
        rois = torch.cat([torch.zeros(3, 1), results[0].boxes[:3] * torch.tensor(
            batch["img_metas"][0]["scale_factor"])], dim=1)
        labels = results[0].labels[:3]
        per_stage = [head.mask_probs(head(ext(feats, rois)), labels)
                     for ext, head in zip(model.roi_head.mask_roi_extractor, model.roi_head.mask_head)]
        mean = torch.stack(per_stage).mean(0)
        assert torch.allclose(model.roi_head.mask_probs(feats, rois, labels), mean, atol=1e-6)
        assert not torch.allclose(per_stage[0], per_stage[2], atol=1e-3)
    assert results[0].masks.shape[1:] == tuple(batch["img_metas"][0]["ori_shape"][:2])
