"""`detzoo test` with an RPN (--eval proposal, --out proposals.pkl) and a Fast R-CNN reading them."""
import pickle
import re
import textwrap

import numpy as np
import pytest
import torch
from pycocotools.cocoeval import COCOeval

from detzoo.apis.inference import init_detector
from detzoo.cli.main import main
from detzoo.evaluation import load_proposals
from detzoo.evaluation.results_io import load_coco_gt, quiet_stdout

COMMON = '''
from detzoo.data import CocoDataset
from detzoo.data.transforms import (Collect, DefaultFormatBundle, LoadImageFromFile, LoadProposals,
                                    MultiScaleFlipAug, Normalize, Pad, RandomFlip, Resize)
from detzoo.models.backbones import ResNet
from detzoo.models.necks import FPN
from detzoo.models.losses import CrossEntropyLoss, L1Loss
from detzoo.models.task_modules import DeltaXYWHBBoxCoder

backbone = dict(type=ResNet, depth=18, stem_channels=32, base_channels=32, num_stages=4,
                out_indices=(0, 1, 2, 3), frozen_stages=-1, norm_eval=False, style="pytorch")
neck = dict(type=FPN, in_channels=[32, 64, 128, 256], out_channels=32, num_outs=5)
norm = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
inner = [dict(type=Resize, keep_ratio=True), dict(type=RandomFlip), dict(type=Normalize, **norm),
         dict(type=Pad, size_divisor=32), dict(type=DefaultFormatBundle)]
'''

RPN_CFG = COMMON + '''
from detzoo.models.dense_heads import RPNHead
from detzoo.models.detectors.rpn import RPN
from detzoo.models.task_modules import AnchorGenerator

model = dict(
    type=RPN, backbone=backbone, neck=neck,
    rpn_head=dict(type=RPNHead, in_channels=32, feat_channels=32,
                  anchor_generator=dict(type=AnchorGenerator, scales=[4], ratios=[0.5, 1.0, 2.0],
                                        strides=[4, 8, 16, 32, 64]),
                  bbox_coder=dict(type=DeltaXYWHBBoxCoder, target_means=[0.0] * 4, target_stds=[1.0] * 4),
                  loss_cls=dict(type=CrossEntropyLoss, use_sigmoid=True), loss_bbox=dict(type=L1Loss)),
    test_cfg=dict(rpn=dict(nms_pre=400, max_per_img=200, nms=dict(iou_threshold=0.7), min_bbox_size=0)))
test_pipeline = [dict(type=LoadImageFromFile),
                 dict(type=MultiScaleFlipAug, img_scale=(128, 96), flip=False,
                      transforms=inner + [dict(type=Collect, keys=["img"])])]
data = dict(samples_per_gpu=2, workers_per_gpu=0,
            test=dict(type=CocoDataset, ann_file=ANN, img_prefix=IMGS, pipeline=test_pipeline))
'''

FAST_CFG = COMMON + '''
from detzoo.models.detectors.fast_rcnn import FastRCNN
from detzoo.models.roi_heads import Shared2FCBBoxHead, SingleRoIExtractor, StandardRoIHead
from detzoo.ops import RoIAlign

model = dict(
    type=FastRCNN, backbone=backbone, neck=neck,
    roi_head=dict(type=StandardRoIHead,
                  bbox_roi_extractor=dict(type=SingleRoIExtractor, out_channels=32, featmap_strides=[4, 8, 16, 32],
                                          roi_layer=dict(type=RoIAlign, output_size=7, sampling_ratio=0)),
                  bbox_head=dict(type=Shared2FCBBoxHead, in_channels=32, fc_out_channels=64, roi_feat_size=7,
                                 num_classes=4, loss_cls=dict(type=CrossEntropyLoss), loss_bbox=dict(type=L1Loss),
                                 bbox_coder=dict(type=DeltaXYWHBBoxCoder, target_means=[0.0] * 4,
                                                 target_stds=[0.1, 0.1, 0.2, 0.2]))),
    test_cfg=dict(rcnn=dict(score_thr=0.05, nms=dict(iou_threshold=0.5), max_per_img=100)))
test_pipeline = [dict(type=LoadImageFromFile), dict(type=LoadProposals),
                 dict(type=MultiScaleFlipAug, img_scale=(128, 96), flip=False,
                      transforms=inner + [dict(type=Collect, keys=["img", "proposals"])])]
data = dict(samples_per_gpu=2, workers_per_gpu=0,
            test=dict(type=CocoDataset, ann_file=ANN, img_prefix=IMGS, classes=CLASSES, pipeline=test_pipeline,
                      proposal_file=PROPOSALS))
'''


def write_config(path, body, **names):
    header = "".join(f"{k} = {v!r}\n" for k, v in names.items())
    path.write_text(header + textwrap.dedent(body))
    return str(path)


def save_random_checkpoint(config, path, seed, edit=None):
    torch.manual_seed(seed)
    model = init_detector(config)
    if edit is not None:
        edit(model)
    torch.save({"meta": {"CLASSES": ["circle", "square", "triangle", "star"]}, "state_dict": model.state_dict()},
               path)
    return str(path)


@pytest.fixture(scope="module")
def rpn_run(shapes_dataset, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli_rpn")
    cfg = write_config(tmp / "tiny_rpn.py", RPN_CFG, ANN=shapes_dataset["val_ann"],
                       IMGS=shapes_dataset["img_dir"] + "/")

    def spread_scores(model):  # a fresh RPN scores all anchors ~0.5: make the ranking meaningful
        with torch.no_grad():
            model.rpn_head.rpn_cls.weight.normal_(0, 0.5)
    ckpt = save_random_checkpoint(cfg, tmp / "rpn.pth", 0, spread_scores)
    return dict(cfg=cfg, ckpt=ckpt, out=str(tmp / "p.pkl"), tmp=tmp)


def test_rpn_test_writes_proposals_and_reports_recall(rpn_run, shapes_dataset, capsys):
    code = main(["test", rpn_run["cfg"], rpn_run["ckpt"], "--eval", "proposal", "--out", rpn_run["out"],
                 "--device", "cpu", "--batch-size", "2"])
    out = capsys.readouterr().out
    assert code == 0
    proposals = load_proposals(rpn_run["out"])
    coco = load_coco_gt(shapes_dataset["val_ann"])
    images = coco.dataset["images"]
    assert len(proposals) == len(images) == 6
    for props, info in zip(proposals, images):
        assert props.shape[1] == 5 and 0 < len(props) <= 200
        assert np.all(props[:-1, 4] >= props[1:, 4])
        # original-image pixels: the images are up to 320 px but the net saw at most 128x96
        assert props[:, 2].max() <= info["width"] + 1e-3 and props[:, 3].max() <= info["height"] + 1e-3
    assert max(p[:, 2].max() for p in proposals) > 128
    # the printed recall is pycocotools' class-agnostic AR of exactly these proposals
    entries = [dict(image_id=info["id"], category_id=1, score=float(row[4]),
                    bbox=[float(row[0]), float(row[1]), float(row[2] - row[0]), float(row[3] - row[1])])
               for props, info in zip(proposals, images) for row in props]
    with quiet_stdout():
        ev = COCOeval(coco, coco.loadRes(entries), "bbox")
        ev.params.useCats, ev.params.maxDets = 0, [100, 300, 1000]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    printed = dict(re.findall(r"(AR[_sml]*@\d+): ([0-9.]+)", out))
    assert list(printed) == ["AR@100", "AR@300", "AR@1000", "AR_s@1000", "AR_m@1000", "AR_l@1000"]
    for i, name in enumerate(printed):
        assert float(printed[name]) == pytest.approx(ev.stats[6 + i], abs=6e-4), name
    assert ev.stats[8] > 0.01


def test_fast_rcnn_test_reads_the_dumped_proposals(rpn_run, shapes_dataset, capsys):
    if not (rpn_run["tmp"] / "p.pkl").is_file():
        assert main(["test", rpn_run["cfg"], rpn_run["ckpt"], "--out", rpn_run["out"], "--device", "cpu"]) == 0
    cfg = write_config(rpn_run["tmp"] / "tiny_fast.py", FAST_CFG, ANN=shapes_dataset["val_ann"],
                       IMGS=shapes_dataset["img_dir"] + "/", CLASSES=shapes_dataset["classes"],
                       PROPOSALS=rpn_run["out"])

    def no_regression(model):  # then every detection box is one of the file's proposals
        with torch.no_grad():
            model.roi_head.bbox_head.fc_reg.weight.zero_()
            model.roi_head.bbox_head.fc_reg.bias.zero_()
    ckpt = save_random_checkpoint(cfg, rpn_run["tmp"] / "fast.pth", 1, no_regression)
    out_pkl = str(rpn_run["tmp"] / "dets.pkl")
    capsys.readouterr()
    code = main(["test", cfg, ckpt, "--eval", "bbox", "--out", out_pkl, "--device", "cpu", "--batch-size", "2"])
    assert code == 0 and "bbox_mAP" in capsys.readouterr().out
    with open(out_pkl, "rb") as f:
        dets = pickle.load(f)
    proposals = load_proposals(rpn_run["out"])
    assert len(dets) == len(proposals) == 6
    found = 0
    for per_class, props in zip(dets, proposals):
        assert len(per_class) == 4 and all(a.shape[1] == 5 for a in per_class)
        boxes = np.concatenate(per_class)[:, :4]
        found += len(boxes)
        if len(boxes):
            dist = np.abs(boxes[:, None, :] - props[None, :, :4]).max(-1).min(1)
            assert dist.max() < 0.05
    assert found > 0


def test_rpn_refuses_class_metrics_and_unknown_out_format(rpn_run, capsys):
    assert main(["test", rpn_run["cfg"], rpn_run["ckpt"], "--eval", "bbox"]) == 2
    err = capsys.readouterr().err
    assert "--eval proposal" in err and len(err.strip().splitlines()) == 1
    assert main(["test", rpn_run["cfg"], rpn_run["ckpt"], "--out", str(rpn_run["tmp"] / "p.txt")]) == 2
    assert ".pkl" in capsys.readouterr().err
