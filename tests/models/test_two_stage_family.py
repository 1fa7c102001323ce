"""Mask R-CNN and Cascade (Mask) R-CNN: MMDetection checkpoint layouts, recorded train/test
settings, and the cascade's test path and refinement against loop references written here."""
import json
import math

import numpy as np
import pytest
import torch

from detzoo.config import load_config
from detzoo.engine.checkpoint import load_model_weights
from detzoo.models.builder import build_detector
from detzoo.models.roi_heads import CascadeRoIHead, Shared2FCBBoxHead, SingleRoIExtractor
from detzoo.models.losses import CrossEntropyLoss, SmoothL1Loss
from detzoo.models.task_modules import DeltaXYWHBBoxCoder, MaxIoUAssigner, RandomSampler
from detzoo.ops import RoIAlign

from shared_paths import MMDET_LAYOUTS as LAYOUTS
from test_faster_rcnn import reference_rcnn_postprocess

MODELS = {  # zoo config -> layout file
    "mask_rcnn_r50_fpn_1x_coco": "mask-rcnn_r50_fpn_1x_coco",
    "cascade_rcnn_r50_fpn_1x_coco": "cascade-rcnn_r50_fpn_1x_coco",
    "cascade_mask_rcnn_r50_fpn_1x_coco": "cascade-mask-rcnn_r50_fpn_1x_coco",
}


def layout(name):
    path = LAYOUTS / f"{name}.json"
    if not path.is_file():
        pytest.fail(f"checkpoint layout {path} is missing (shared/ must sit beside the checkout)")
    return json.loads(path.read_text())


@pytest.mark.parametrize("config,layout_name", sorted(MODELS.items()))
def test_state_dict_matches_layout_and_loads_strictly(config, layout_name, tmp_path):
    model = build_detector(load_config(config)["model"])
    info = layout(layout_name)
    ref = {k: tuple(shape) for k, shape in info["layout"]}
    mine = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert sorted(set(mine) ^ set(ref)) == []
    assert mine == ref
    gen = torch.Generator().manual_seed(0)
    state = {k: (torch.tensor(0) if k.endswith("num_batches_tracked") else torch.randn(s, generator=gen))
             for k, s in info["layout"]}
    path = tmp_path / "mmdet_style.pth"
    torch.save({"meta": {}, "state_dict": state}, path)
    load_model_weights(model, str(path), strict=True)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("config,layout_name", sorted(MODELS.items()))
def test_train_and_test_settings_match_reference_record(config, layout_name):
    cfg = load_config(config)["model"]
    ref = layout(layout_name)
    ref_train, ref_test = ref["train_cfg"], ref["test_cfg"]
    rcnn = cfg["train_cfg"]["rcnn"]
    stages = rcnn if isinstance(rcnn, list) else [rcnn]
    ref_stages = ref_train["rcnn"] if isinstance(ref_train["rcnn"], list) else [ref_train["rcnn"]]
    assert len(stages) == len(ref_stages)
    for mine, theirs in zip(stages, ref_stages):
        for key in ("pos_iou_thr", "neg_iou_thr", "min_pos_iou", "match_low_quality"):
            assert mine["assigner"][key] == theirs["assigner"][key], key
        for key in ("num", "pos_fraction", "add_gt_as_proposals"):
            assert mine["sampler"][key] == theirs["sampler"][key], key
        if "mask_size" in theirs:
            assert mine["mask_size"] == theirs["mask_size"]
    for key in ("nms_pre", "max_per_img"):
        assert cfg["train_cfg"]["rpn_proposal"][key] == ref_train["rpn_proposal"][key]
    assert cfg["train_cfg"]["rpn"]["allowed_border"] == ref_train["rpn"]["allowed_border"]
    assert cfg["test_cfg"]["rcnn"].get("mask_thr_binary") == ref_test["rcnn"].get("mask_thr_binary")
    ref_roi = ref["model_cfg"]["roi_head"]
    if ref_roi["type"] == "CascadeRoIHead":
        assert cfg["roi_head"]["stage_loss_weights"] == ref_roi["stage_loss_weights"]
        for mine, theirs in zip(cfg["roi_head"]["bbox_head"], ref_roi["bbox_head"]):
            assert mine["bbox_coder"]["target_stds"] == theirs["bbox_coder"]["target_stds"]
            assert mine["reg_class_agnostic"] == theirs["reg_class_agnostic"]
            assert mine["loss_bbox"]["beta"] == theirs["loss_bbox"]["beta"]
        assert cfg["rpn_head"]["loss_bbox"]["beta"] == pytest.approx(ref["model_cfg"]["rpn_head"]["loss_bbox"]["beta"])


# -- a small cascade head, checked against loops ---------------------------------------------------
STDS = [(0.1, 0.1, 0.2, 0.2), (0.05, 0.05, 0.1, 0.1), (0.033, 0.033, 0.067, 0.067)]
NUM_CLASSES, CHANNELS = 3, 8


def small_cascade(seed=0):
    torch.manual_seed(seed)
    heads = [dict(type=Shared2FCBBoxHead, num_classes=NUM_CLASSES, in_channels=CHANNELS, fc_out_channels=16,
                  roi_feat_size=7, reg_class_agnostic=True,
                  bbox_coder=dict(type=DeltaXYWHBBoxCoder, target_means=[0.0] * 4, target_stds=list(s)),
                  loss_cls=dict(type=CrossEntropyLoss), loss_bbox=dict(type=SmoothL1Loss, beta=1.0))
             for s in STDS]
    stage_cfg = lambda iou: dict(  # noqa: E731
        assigner=dict(type=MaxIoUAssigner, pos_iou_thr=iou, neg_iou_thr=iou, min_pos_iou=iou),
        sampler=dict(type=RandomSampler, num=32, pos_fraction=0.25, add_gt_as_proposals=True))
    head = CascadeRoIHead(
        num_stages=3, stage_loss_weights=[1, 0.5, 0.25],
        bbox_roi_extractor=dict(type=SingleRoIExtractor, roi_layer=dict(type=RoIAlign, output_size=7, sampling_ratio=0),
                                out_channels=CHANNELS, featmap_strides=[4, 8]),
        bbox_head=heads, train_cfg=[stage_cfg(0.5), stage_cfg(0.6), stage_cfg(0.7)],
        test_cfg=dict(score_thr=0.05, nms=dict(iou_threshold=0.5), max_per_img=50))
    for h in head.bbox_head:  # larger weights so the stages move boxes and disagree on scores
        torch.nn.init.normal_(h.fc_reg.weight, std=0.3)
        torch.nn.init.normal_(h.fc_cls.weight, std=0.3)
    return head


def _decode(box, d, stds, img_hw):
    px, py, pw, ph = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, box[2] - box[0], box[3] - box[1]
    dx, dy, dw, dh = (d[k] * stds[k] for k in range(4))
    clip = abs(math.log(16 / 1000))
    dw, dh = max(-clip, min(clip, dw)), max(-clip, min(clip, dh))
    gx, gy, gw, gh = px + pw * dx, py + ph * dy, pw * math.exp(dw), ph * math.exp(dh)
    h, w = img_hw
    return [min(max(gx - gw / 2, 0), w), min(max(gy - gh / 2, 0), h),
            min(max(gx + gw / 2, 0), w), min(max(gy + gh / 2, 0), h)]


@torch.no_grad()
def test_cascade_test_path_matches_stage_loop():
    head = small_cascade().eval()
    gen = torch.Generator().manual_seed(1)
    feats = [torch.randn(1, CHANNELS, 32, 40, generator=gen), torch.randn(1, CHANNELS, 16, 20, generator=gen)]
    xy = torch.rand(30, 2, generator=gen) * 100
    proposals = torch.cat([xy, xy + 8 + torch.rand(30, 2, generator=gen) * 60], dim=1)
    meta = {"img_shape": (128, 160, 3), "scale_factor": np.array([2.0, 2.0, 2.0, 2.0], dtype=np.float32)}
    result = head.simple_test(feats, [proposals], [meta], rescale=True)[0]

    # reference: one stage at a time, boxes refined one RoI at a time by the top foreground class
    boxes = proposals.double().tolist()
    logits_sum = None
    for stage in range(3):
        rois = torch.cat([torch.zeros(len(boxes), 1), torch.tensor(boxes, dtype=torch.float32)], dim=1)
        logits, deltas = head.bbox_head[stage](head.bbox_roi_extractor[stage](feats, rois))
        logits_sum = logits.double() if logits_sum is None else logits_sum + logits.double()
        if stage < 2:
            boxes = [_decode(b, deltas[i].tolist(), STDS[stage], (128, 160)) for i, b in enumerate(boxes)]
    mean_logits = (logits_sum / 3).float()
    # the last stage's class-agnostic deltas, repeated per class for the Faster R-CNN reference
    ref = reference_rcnn_postprocess(torch.tensor(boxes), mean_logits, deltas.repeat(1, NUM_CLASSES),
                                     (128, 160), (2.0, 2.0), STDS[2], 0.05, 0.5, 50)
    assert len(result) == len(ref) > 3
    assert result.scores.tolist() == pytest.approx([r[0] for r in ref], abs=1e-5)
    assert result.labels.tolist() == [r[1] for r in ref]
    assert result.boxes.flatten().tolist() == pytest.approx([v for r in ref for v in r[2]], abs=2e-3)


def test_cascade_training_weights_stages_and_refines_without_gt():
    head = small_cascade()
    gen = torch.Generator().manual_seed(2)
    feats = [torch.randn(2, CHANNELS, 32, 40, generator=gen), torch.randn(2, CHANNELS, 16, 20, generator=gen)]
    gt = [torch.tensor([[10.0, 10.0, 60.0, 50.0], [80.0, 30.0, 140.0, 110.0]]), torch.tensor([[20.0, 40.0, 90.0, 100.0]])]
    labels = [torch.tensor([0, 2]), torch.tensor([1])]
    proposals = [torch.cat([g + torch.randn(g.shape, generator=gen) * 4 for _ in range(6)] +
                           [torch.rand(20, 2, generator=gen).repeat(1, 2) * 100 + torch.tensor([0, 0, 20, 20])])
                 for g in gt]
    metas = [{"img_shape": (128, 160, 3)}] * 2
    # per-stage losses without weighting, from the stages run by hand
    seen = {}
    original = [h.loss for h in head.bbox_head]
    for stage, h in enumerate(head.bbox_head):
        def spy(*args, _stage=stage, _orig=original[stage]):
            out = _orig(*args)
            seen[_stage] = {k: v.detach().clone() for k, v in out.items()}
            return out
        h.loss = spy
    torch.manual_seed(0)
    losses = head.forward_train(feats, metas, proposals, gt, labels)
    for stage, weight in enumerate([1, 0.5, 0.25]):
        assert losses[f"s{stage}.loss_cls"].item() == pytest.approx(weight * seen[stage]["loss_cls"].item())
        assert losses[f"s{stage}.acc"].item() == pytest.approx(seen[stage]["acc"].item())
    # refinement: the next stage's proposals are the sampled RoIs minus the added ground truth
    for h, orig in zip(head.bbox_head, original):
        h.loss = orig
    stage0 = head.bbox_head[0]
    from detzoo.models.roi_heads.base_roi_head import assign_and_sample, boxes_to_rois
    cfg = head.train_cfg[0]
    torch.manual_seed(0)
    samples = assign_and_sample(cfg["assigner"], cfg["sampler"], proposals, gt, labels)
    rois = boxes_to_rois([s.bboxes for s in samples])
    cls_score, bbox_pred = stage0(head.bbox_roi_extractor[0](feats, rois))
    target_labels = stage0.get_targets(samples)[0]
    refined = stage0.refine_bboxes(samples, rois, cls_score, bbox_pred, target_labels, metas)
    for s, r in zip(samples, refined):
        assert r.shape[0] == s.bboxes.shape[0] - int(s.pos_is_gt.sum())
    # spot-check one RoI by hand: the first non-gt RoI of image 0
    first = int((~samples[0].pos_is_gt).nonzero()[0]) if samples[0].pos_is_gt.numel() else 0
    expected = _decode(rois[first, 1:].tolist(), bbox_pred[first].tolist(), STDS[0], (128, 160))
    assert refined[0][0].tolist() == pytest.approx(expected, abs=1e-3)
