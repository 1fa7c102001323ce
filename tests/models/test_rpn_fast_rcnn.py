"""RPN as a detector (layout, predict, AR evaluation) and Fast R-CNN on given proposals."""
import copy
import json

import numpy as np
import pytest
import torch
from pycocotools.cocoeval import COCOeval

from detzoo.apis.test import evaluate_detector, run_test
from detzoo.config import load_config
from detzoo.data import CocoDataset, build_dataloader
from detzoo.data.transforms import (Collect, DefaultFormatBundle, LoadAnnotations, LoadImageFromFile,
                                    LoadProposals, MultiScaleFlipAug, Normalize, Pad, RandomFlip, Resize)
from detzoo.engine.checkpoint import load_model_weights
from detzoo.errors import DataError
from detzoo.evaluation import save_proposals
from detzoo.evaluation.results_io import quiet_stdout, results_to_coco_json
from detzoo.models.builder import build_detector
from detzoo.models.detectors.fast_rcnn import FastRCNN
from detzoo.models.detectors.rpn import RPN
from detzoo.structures import DetResult

from shared_paths import layout_dir, layout_fingerprint

RPN_LAYOUT = "rpn_r50_fpn_1x_coco.json"
RPN_LAYOUT_COUNT = 340
RPN_LAYOUT_DIGEST = "61919c0e39c7d0204a535f158b0264daa5e8bdd45bfe987fd6fe32878fab2f92"
NORM = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
SCALE = (128, 96)


def shrink(model_cfg, channels=48):
    """The quickstart's half-width ResNet-18 FPN in place of ResNet-50 (fast on a CPU)."""
    cfg = copy.deepcopy(model_cfg)
    cfg["backbone"].update(depth=18, stem_channels=32, base_channels=32, frozen_stages=-1, norm_eval=False)
    cfg["neck"].update(in_channels=[32, 64, 128, 256], out_channels=channels)
    if "rpn_head" in cfg:
        cfg["rpn_head"].update(in_channels=channels, feat_channels=channels)
        cfg["rpn_head"]["anchor_generator"]["scales"] = [4]
    if "roi_head" in cfg:
        cfg["roi_head"]["bbox_roi_extractor"]["out_channels"] = channels
        cfg["roi_head"]["bbox_head"].update(in_channels=channels, fc_out_channels=128, num_classes=4)
    return cfg


def tiny_rpn(seed=0):
    torch.manual_seed(seed)
    return build_detector(shrink(load_config("rpn_r50_fpn_1x_coco")["model"])).eval()


def tiny_fast_rcnn(seed=0):
    torch.manual_seed(seed)
    cfg = shrink(load_config("fast_rcnn_r50_fpn_1x_coco")["model"])
    cfg["train_cfg"]["rcnn"]["sampler"]["num"] = 32
    return build_detector(cfg)


# ------------------------------------------------------------------------------------ RPN

def test_rpn_state_dict_matches_mmdetection_layout():
    model = build_detector(load_config("rpn_r50_fpn_1x_coco")["model"])
    assert isinstance(model, RPN)
    mine = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    folder = layout_dir()
    if folder is not None:
        record = json.loads((folder / RPN_LAYOUT).read_text())
        ref = {k: tuple(s) for k, s in record["layout"]}
        assert sorted(set(mine) - set(ref)) == [] and sorted(set(ref) - set(mine)) == []
        assert {k: s for k, s in mine.items() if ref[k] != s} == {}
        assert record["test_cfg"]["rpn"]["nms_pre"] == model.rpn_head.test_cfg["nms_pre"] == 2000
        assert record["test_cfg"]["rpn"]["max_per_img"] == model.rpn_head.test_cfg["max_per_img"] == 1000
        assert record["train_cfg"]["rpn"]["allowed_border"] == model.rpn_head.train_cfg["allowed_border"]
    assert (len(mine), layout_fingerprint(mine.items())) == (RPN_LAYOUT_COUNT, RPN_LAYOUT_DIGEST)


def test_rpn_loads_mmdet3_and_mmdet2_head_keys():
    model = tiny_rpn()
    gen = torch.Generator().manual_seed(1)
    state = {k: (torch.randn(v.shape, generator=gen) if v.is_floating_point() else v.clone())
             for k, v in model.state_dict().items()}
    assert "bbox_head.rpn_cls.weight" in state and not any(k.startswith("rpn_head.") for k in state)
    load_model_weights(model, {"state_dict": state}, strict=True)  # mmdet 3.x names
    assert torch.equal(model.rpn_head.rpn_cls.weight, state["bbox_head.rpn_cls.weight"])
    # MMDetection 2.x files (the published RPN weights) call the head rpn_head
    legacy = {k.replace("bbox_head.", "rpn_head.", 1): v * 2 if v.is_floating_point() else v
              for k, v in state.items()}
    model.load_state_dict(legacy, strict=True)
    assert torch.equal(model.rpn_head.rpn_reg.bias, 2 * state["bbox_head.rpn_reg.bias"])
    converted = RPN.convert_checkpoint_keys(legacy)
    assert list(converted) == list(state)


def _metas(img_shapes, scale_factors):
    return [dict(img_shape=(h, w, 3), pad_shape=(64, 96, 3), ori_shape=(round(h / sh), round(w / sw), 3),
                 scale_factor=np.array([sw, sh, sw, sh], dtype=np.float32), flip=False, img_id=i)
            for i, ((h, w), (sw, sh)) in enumerate(zip(img_shapes, scale_factors))]


def test_rpn_predict_equals_head_proposals_rescaled():
    model = tiny_rpn()
    # a random RPN scores all anchors alike: spread the objectness so the ranking is robust
    with torch.no_grad():
        model.rpn_head.rpn_cls.weight.normal_(0, 0.5)
    model.rpn_head.test_cfg.update(nms_pre=300, max_per_img=150)
    img = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(2))
    metas = _metas([(64, 90), (50, 96)], [(0.5, 0.5), (1.25, 0.8)])
    with torch.no_grad():
        results = model.predict(img, metas, rescale=True)
        unscaled = model.predict(img, metas, rescale=False)
        by_hand = model.rpn_head.simple_test_rpn(model.extract_feat(img), metas)
    for result, raw, dets, meta in zip(results, unscaled, by_hand, metas):
        assert 0 < len(result) <= 150 and dets.shape == (len(result), 5)
        sw, sh = meta["scale_factor"][:2]
        expected = dets[:, :4] / torch.tensor([sw, sh, sw, sh])
        assert torch.allclose(result.boxes, expected, rtol=0, atol=1e-5)
        assert torch.equal(raw.boxes, dets[:, :4])
        assert torch.equal(result.scores, dets[:, 4])
        assert bool((result.scores[:-1] >= result.scores[1:]).all())
        assert result.labels.dtype == torch.long and not result.labels.any()
        # proposals lie in the (unpadded) resized image before rescaling
        h, w = meta["img_shape"][:2]
        assert float(raw.boxes[:, 2].max()) <= w and float(raw.boxes[:, 3].max()) <= h
    assert float(results[1].boxes[:, 2].max()) > 0  # different scale factors really applied
    assert not torch.allclose(results[1].boxes, unscaled[1].boxes)


def test_rpn_loss_is_the_head_loss_without_labels(shapes_dataset):
    model = tiny_rpn().train()
    pipeline = [dict(type=LoadImageFromFile), dict(type=LoadAnnotations, with_bbox=True, with_label=False),
                dict(type=Resize, img_scale=SCALE, keep_ratio=True), dict(type=Normalize, **NORM),
                dict(type=Pad, size_divisor=32), dict(type=DefaultFormatBundle),
                dict(type=Collect, keys=["img", "gt_bboxes"])]
    dataset = CocoDataset(shapes_dataset["train_ann"], shapes_dataset["img_dir"] + "/", pipeline)
    batch = next(iter(build_dataloader(dataset, 2, 0, shuffle=False)))
    assert "gt_labels" not in batch
    torch.manual_seed(5)
    losses = model.loss(batch)
    assert set(losses) == {"loss_rpn_cls", "loss_rpn_bbox"}
    torch.manual_seed(5)
    feats = model.extract_feat(batch["img"])
    ref = model.rpn_head.loss(*model.rpn_head(feats), batch["gt_bboxes"], None, batch["img_metas"])
    assert torch.allclose(losses["loss_rpn_cls"], ref["loss_cls"])
    assert torch.allclose(losses["loss_rpn_bbox"], ref["loss_bbox"])
    assert losses["loss_rpn_cls"].item() > 0.1 and losses["loss_rpn_bbox"].requires_grad


def _synthetic_proposals(dataset, seed=0, per_image=1200):
    """Per image 1200 scored boxes: jittered GT copies ranked in 150..1000 (so AR grows up to
    1000 proposals), the rest random; labels all 0 (the first class only)."""
    rng = np.random.default_rng(seed)
    results = []
    for info in dataset.data_infos:
        gt = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                       for a in dataset.coco.imgToAnns[info["id"]]], dtype=np.float32)
        w, h = info["width"], info["height"]
        xy = rng.uniform(0, [w, h], size=(per_image, 2))
        wh = rng.uniform(4, [w / 2, h / 2], size=(per_image, 2))
        boxes = np.concatenate([xy, np.minimum(xy + wh, [w, h])], axis=1).astype(np.float32)
        jitter = np.repeat(gt, 40, axis=0)
        jitter = jitter + rng.normal(0, 3, jitter.shape).astype(np.float32)
        slots = rng.choice(np.arange(150, 1000), size=len(jitter), replace=False)
        boxes[slots] = jitter
        scores = np.linspace(1, 0.01, per_image, dtype=np.float32)
        results.append(DetResult(torch.from_numpy(boxes), torch.from_numpy(scores),
                                 torch.zeros(per_image, dtype=torch.long)))
    return results


def test_proposal_ar_equals_pycocotools_class_agnostic(shapes_dataset):
    dataset = CocoDataset(shapes_dataset["val_ann"], shapes_dataset["img_dir"] + "/", [], test_mode=True)
    results = _synthetic_proposals(dataset)
    with quiet_stdout():
        metrics = evaluate_detector(None, dataset, "proposal", results=results)
    entries = results_to_coco_json(results, dataset.img_ids, dataset.cat_ids)

    def reference(use_cats):
        with quiet_stdout():
            ev = COCOeval(dataset.coco, dataset.coco.loadRes(copy.deepcopy(entries)), "bbox")
            ev.params.useCats = use_cats
            ev.params.maxDets = [100, 300, 1000]
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        return ev.stats

    stats = reference(0)
    names = ["AR@100", "AR@300", "AR@1000", "AR_s@1000", "AR_m@1000", "AR_l@1000"]
    assert list(metrics) == names
    for i, name in enumerate(names):
        assert metrics[name] == pytest.approx(float(f"{stats[6 + i]:.3f}"), abs=1e-9), name
    # the test can tell: recall keeps growing up to 1000 proposals, and labelling all proposals
    # with the first class would lose the other classes' objects if categories were used
    assert metrics["AR@100"] < metrics["AR@300"] < metrics["AR@1000"]
    assert reference(1)[8] < stats[8] - 0.2


# ------------------------------------------------------------------------------- Fast R-CNN

def _train_proposals(dataset, path, seed=0):
    """Jittered GT copies and random boxes per image of the (unfiltered) annotation file."""
    rng = np.random.default_rng(seed)
    arrays = []
    for info in dataset.coco.dataset["images"]:
        gt = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                       for a in dataset.coco.imgToAnns[info["id"]]], dtype=np.float32).reshape(-1, 4)
        near = np.repeat(gt, 8, axis=0) + rng.normal(0, 4, (len(gt) * 8, 4)).astype(np.float32)
        xy = rng.uniform(0, [info["width"] - 20, info["height"] - 20], size=(40, 2))
        rand = np.concatenate([xy, xy + rng.uniform(8, 60, size=(40, 2))], axis=1)
        boxes = np.concatenate([near, rand]).astype(np.float32)
        size = np.array([info["width"], info["height"]], dtype=np.float32)
        boxes[:, :2] = np.clip(boxes[:, :2], 0, size - 2)  # inside the image: Resize clips boxes
        boxes[:, 2:] = np.clip(boxes[:, 2:], boxes[:, :2] + 1, size)
        arrays.append(np.concatenate([boxes, rng.random((len(boxes), 1), dtype=np.float32)], axis=1))
    save_proposals(path, arrays)


def test_fast_rcnn_trains_on_file_proposals(shapes_dataset, tmp_path):
    ann = shapes_dataset["train_ann"]
    probe = CocoDataset(ann, shapes_dataset["img_dir"] + "/", [])
    _train_proposals(probe, tmp_path / "train_props.pkl")
    pipeline = [dict(type=LoadImageFromFile), dict(type=LoadProposals, num_max_proposals=2000),
                dict(type=LoadAnnotations, with_bbox=True), dict(type=Resize, img_scale=SCALE, keep_ratio=True),
                dict(type=RandomFlip, flip_ratio=0.5), dict(type=Normalize, **NORM),
                dict(type=Pad, size_divisor=32), dict(type=DefaultFormatBundle),
                dict(type=Collect, keys=["img", "proposals", "gt_bboxes", "gt_labels"])]
    dataset = CocoDataset(ann, shapes_dataset["img_dir"] + "/", pipeline,
                          classes=shapes_dataset["classes"], proposal_file=str(tmp_path / "train_props.pkl"))
    model = tiny_fast_rcnn().train()
    assert isinstance(model, FastRCNN)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loader = build_dataloader(dataset, 2, 0, shuffle=True, seed=0)
    batches = [b for _, b in zip(range(2), loader)]
    assert all(isinstance(p, torch.Tensor) and p.shape[1] == 4 for b in batches for p in b["proposals"])
    history = []
    for step in range(4):
        losses = model.loss(batches[step % 2])
        total = sum(v for k, v in losses.items() if "loss" in k)
        assert all(torch.isfinite(v).all() for v in losses.values())
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        history.append(total.item())
    assert {"loss_cls", "loss_bbox"} <= set(losses)
    assert history[-2] + history[-1] < history[0] + history[1]
    with pytest.raises(DataError, match="proposal"):
        model.loss({k: v for k, v in batches[0].items() if k != "proposals"})


def test_fast_rcnn_detections_come_from_the_given_proposals():
    model = tiny_fast_rcnn().eval()
    model.roi_head.test_cfg.update(score_thr=0.0, max_per_img=100)
    with torch.no_grad():  # no box regression: every detection box is its RoI, rescaled
        model.roi_head.bbox_head.fc_reg.weight.zero_()
        model.roi_head.bbox_head.fc_reg.bias.zero_()
    img = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(4))
    metas = _metas([(64, 96), (60, 80)], [(2.0, 2.0), (0.5, 0.4)])
    proposals = [torch.tensor([[10.0, 12.0, 50.0, 40.0], [60.0, 5.0, 90.0, 30.0]]),
                 torch.tensor([[4.0, 8.0, 33.0, 57.0, 0.9]])]
    with torch.no_grad():
        results = model.predict(img, metas, rescale=True, proposals=proposals)
    for result, props, meta in zip(results, proposals, metas):
        assert len(result) > 0
        allowed = props[:, :4] / torch.from_numpy(meta["scale_factor"])
        # each detection is one of this image's proposals (and every proposal shows up)
        match = (result.boxes[:, None, :] - allowed[None]).abs().amax(-1) < 1e-4
        assert bool(match.any(1).all()) and bool(match.any(0).all())
    with pytest.raises(DataError, match="proposals"):
        model.predict(img, metas)
    with pytest.raises(DataError, match="2 images"):
        model.predict(img, metas, proposals=proposals[:1])


def test_run_test_passes_dataset_proposals(shapes_dataset, tmp_path):
    ann = shapes_dataset["val_ann"]
    probe = CocoDataset(ann, shapes_dataset["img_dir"] + "/", [], test_mode=True)
    _train_proposals(probe, tmp_path / "val_props.json", seed=3)
    test_pipeline = [dict(type=LoadImageFromFile), dict(type=LoadProposals),
                     dict(type=MultiScaleFlipAug, img_scale=SCALE, flip=False, transforms=[
                         dict(type=Resize, keep_ratio=True), dict(type=RandomFlip), dict(type=Normalize, **NORM),
                         dict(type=Pad, size_divisor=32), dict(type=DefaultFormatBundle),
                         dict(type=Collect, keys=["img", "proposals"])])]
    dataset = CocoDataset(ann, shapes_dataset["img_dir"] + "/", test_pipeline, classes=shapes_dataset["classes"],
                          test_mode=True, proposal_file=str(tmp_path / "val_props.json"))
    model = tiny_fast_rcnn().eval()
    model.roi_head.test_cfg.update(score_thr=0.0)
    with torch.no_grad():
        model.roi_head.bbox_head.fc_reg.weight.zero_()
        model.roi_head.bbox_head.fc_reg.bias.zero_()
    results = run_test(model, dataset, samples_per_gpu=2, progress=False)
    assert len(results) == len(dataset)
    for result, props in zip(results, dataset.proposals):
        # detections sit on the file's boxes (original pixels, up to resize rounding)
        dist = (result.boxes[:, None, :] - torch.from_numpy(props[:, :4])[None]).abs().amax(-1)
        assert len(result) > 0 and float(dist.min(1).values.max()) < 0.05
