"""FCOS, ATSS and GFL: checkpoint layouts (MMDetection 3.x records), FCOS targets on a hand-made
case, the ATSS assigner against a brute-force loop, the three heads' losses against loop
references on constant predictions, and their box decoding by hand."""
import json
import math
import statistics

import pytest
import torch
import torch.nn as nn

from detzoo.config import instantiate, load_config
from detzoo.engine.checkpoint import load_model_weights
from detzoo.models.builder import build_detector
from detzoo.models.dense_heads import ATSSHead, FCOSHead, GFLHead
from detzoo.models.dense_heads.fcos_head import INF
from detzoo.models.losses import CrossEntropyLoss, FocalLoss, GIoULoss, QualityFocalLoss
from detzoo.models.task_modules import (AnchorGenerator, ATSSAssigner, DeltaXYWHBBoxCoder, DistancePointBBoxCoder,
                                        MlvlPointGenerator)

from shared_paths import MMDET_LAYOUTS as LAYOUTS

MODELS = [("fcos_r50_caffe_fpn_gn-head_1x_coco", "fcos_r50-caffe_fpn_gn-head_1x_coco"),
          ("atss_r50_fpn_1x_coco", "atss_r50_fpn_1x_coco"),
          ("gfl_r50_fpn_1x_coco", "gfl_r50_fpn_1x_coco")]


def layout(name):
    path = LAYOUTS / f"{name}.json"
    if not path.is_file():
        pytest.fail(f"checkpoint layout {path} is missing (shared/ must sit beside the checkout)")
    return json.loads(path.read_text())


# -- layouts ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("config,record", MODELS)
def test_state_dict_matches_layout_and_loads_strictly(config, record, tmp_path):
    info = layout(record)
    model = build_detector(load_config(config)["model"])
    ref = {k: tuple(shape) for k, shape in info["layout"]}
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == ref
    gen = torch.Generator().manual_seed(0)
    state = {}
    for key, shape in info["layout"]:
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(3)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=gen) + 0.5
        else:
            state[key] = torch.randn(shape, generator=gen)
    path = tmp_path / "mmdet_style.pth"
    torch.save({"meta": {"CLASSES": [f"c{i}" for i in range(80)]}, "state_dict": state}, path)
    load_model_weights(model, str(path), strict=True)
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key


@pytest.mark.parametrize("config,record", MODELS)
def test_test_and_train_cfg_match_the_record(config, record):
    info, cfg = layout(record), load_config(config)
    mine, ref = cfg.model.test_cfg, info["test_cfg"]
    for key in ("nms_pre", "min_bbox_size", "score_thr", "max_per_img"):
        assert mine[key] == ref[key], key
    assert mine["nms"]["iou_threshold"] == ref["nms"]["iou_threshold"]
    head, ref_head = cfg.model.bbox_head, info["model_cfg"]["bbox_head"]
    if info["train_cfg"]:
        assert cfg.model.train_cfg["assigner"]["topk"] == info["train_cfg"]["assigner"]["topk"]
        assert head["anchor_generator"]["octave_base_scale"] == ref_head["anchor_generator"]["octave_base_scale"]
        assert head["loss_bbox"]["loss_weight"] == ref_head["loss_bbox"]["loss_weight"]
    else:
        assert list(head["strides"]) == ref_head["strides"]


def test_fcos_trick_variant_has_biased_tower_convs():
    cfg = load_config("fcos_center-normbbox-centeronreg-giou_r50_caffe_fpn_gn-head_1x_coco")
    head = instantiate(cfg.model.bbox_head)
    keys = set(head.state_dict())
    assert {"cls_convs.0.conv.bias", "reg_convs.3.conv.bias", "conv_centerness.weight"} <= keys
    assert head.norm_on_bbox and head.center_sampling and head.centerness_on_reg
    assert isinstance(head.loss_bbox, GIoULoss) and cfg.model.test_cfg.nms.iou_threshold == 0.6


# -- priors and decoding ---------------------------------------------------------------------------
def test_points_are_cell_centres_row_major():
    gen = MlvlPointGenerator([8, 16])
    level0, level1 = gen.grid_priors([(2, 3), (1, 2)])
    assert level0.tolist() == [[4, 4], [12, 4], [20, 4], [4, 12], [12, 12], [20, 12]]
    assert level1.tolist() == [[8, 8], [24, 8]]
    assert gen.grid_priors([(1, 2)], with_stride=True)[0].tolist() == [[4, 4, 8, 8], [12, 4, 8, 8]]
    assert [f.tolist() for f in gen.valid_flags([(2, 3)], (8, 16, 3))] == [[True, True, False, False, False, False]]


def test_distance_coder_by_hand():
    coder = DistancePointBBoxCoder()
    points = torch.tensor([[10.0, 20.0]])
    assert coder.decode(points, torch.tensor([[5.0, 30.0, 100.0, 2.0]]), max_shape=(40, 50, 3)).tolist() == \
        [[5.0, 0.0, 50.0, 22.0]]
    assert coder.decode(points, torch.tensor([[5.0, 30.0, 100.0, 2.0]])).tolist() == [[5.0, -10.0, 110.0, 22.0]]
    dist = coder.encode(points, torch.tensor([[0.0, 0.0, 30.0, 22.0]]), max_dis=16)
    assert dist[0].tolist() == pytest.approx([10.0, 15.9, 15.9, 2.0])


def tiny_gfl(reg_max=16, strides=(8, 16), octave=8, topk=3):
    return GFLHead(num_classes=3, in_channels=8, feat_channels=8, stacked_convs=1,
                   norm_cfg=dict(type="GN", num_groups=2), reg_max=reg_max,
                   anchor_generator=AnchorGenerator(strides=list(strides), ratios=[1.0], octave_base_scale=octave,
                                                    scales_per_octave=1),
                   loss_cls=QualityFocalLoss(beta=2.0), loss_bbox=GIoULoss(loss_weight=2.0),
                   train_cfg=dict(assigner=ATSSAssigner(topk=topk), allowed_border=-1, pos_weight=-1),
                   test_cfg=dict(nms_pre=1000, score_thr=0.05, nms=dict(iou_threshold=0.6), max_per_img=100))


def test_gfl_priors_and_decode_by_hand():
    head = tiny_gfl()
    assert head.priors_of([(1, 2)], "cpu")[0].tolist() == [[0, 0, 8, 8], [8, 0, 8, 8]]  # anchor centres: x*stride
    neg = -1e4
    left, top, right, bottom = [neg] * 17, [0.0] * 17, [neg] * 17, [neg] * 17
    left[3], left[4] = math.log(0.25), math.log(0.75)  # 3.75 bins
    right[1] = 0.0  # 1 bin
    bottom[3], bottom[4] = math.log(0.25), math.log(0.75)  # 3.75; top uniform: 8
    pred = torch.tensor([left + top + right + bottom])
    # distances x stride 8: (30, 64, 8, 30) around (100, 50), clipped to w=105, h=60
    boxes = head.decode(torch.tensor([[100.0, 50.0, 8.0, 8.0]]), pred, (60, 105, 3))
    assert boxes.tolist()[0] == pytest.approx([70.0, 0.0, 105.0, 60.0], abs=1e-4)


# -- FCOS targets ----------------------------------------------------------------------------------
def tiny_fcos(**kwargs):
    kwargs.setdefault("strides", [8, 16])
    kwargs.setdefault("regress_ranges", ((-1, 20), (20, INF)))
    return FCOSHead(num_classes=3, in_channels=8, feat_channels=8, stacked_convs=1,
                    norm_cfg=dict(type="GN", num_groups=2),
                    test_cfg=dict(nms_pre=1000, score_thr=0.05, nms=dict(iou_threshold=0.5), max_per_img=100),
                    **kwargs)


# A 32 x 32 image, levels of stride 8 (4 x 4 points at 4, 12, 20, 28) and 16 (2 x 2 at 8, 24).
GT_A, GT_B, GT_C = [0.0, 0.0, 20.0, 20.0], [10.0, 10.0, 30.0, 26.0], [0.0, 0.0, 32.0, 32.0]  # areas 400, 320, 1024
GTS, GT_LABELS = torch.tensor([GT_A, GT_B, GT_C]), torch.tensor([1, 0, 2])
BG = 3
# Worked out by hand: a point is A's if inside A with largest side distance <= 20 (level 0); B's
# likewise; (12, 12), (20, 12), (12, 20), (20, 20) also qualify for C (distance exactly 20) and
# (12, 12) for A, but B has the smallest area; C alone is large enough for level 1 (>= 20).
LEVEL0_LABELS = [1, 1, BG, BG,
                 1, 0, 0, 0,
                 BG, 0, 0, 0,
                 BG, BG, BG, BG]
LEVEL1_LABELS = [2, 2, 2, 2]
POSITIVES = ([((4, 4), GT_A, 1), ((12, 4), GT_A, 1), ((4, 12), GT_A, 1)]
             + [((x, y), GT_B, 0) for y in (12, 20) for x in (12, 20, 28)]
             + [((x, y), GT_C, 2) for y in (8, 24) for x in (8, 24)])


def fcos_targets(head, gts_per_image, labels_per_image, sizes=((4, 4), (2, 2))):
    points = head.prior_generator.grid_priors(list(sizes))
    return head.get_targets(points, gts_per_image, labels_per_image)


def test_fcos_targets_hand_made_case():
    head = tiny_fcos()
    labels, targets = fcos_targets(head, [GTS, torch.zeros(0, 4)], [GT_LABELS, torch.zeros(0, dtype=torch.long)])
    # level by level, the images one after the other
    assert labels[0].tolist() == LEVEL0_LABELS + [BG] * 16
    assert labels[1].tolist() == LEVEL1_LABELS + [BG] * 4
    assert targets[0][5].tolist() == [2, 2, 18, 14]  # (12, 12) -> B
    assert targets[0][4].tolist() == [4, 12, 16, 8]  # (4, 12) -> A
    assert targets[1][3].tolist() == [24, 24, 8, 8]  # (24, 24) -> C
    ctr = head.centerness_target(torch.tensor([[2.0, 2.0, 18.0, 14.0], [24.0, 24.0, 8.0, 8.0]]))
    assert ctr.tolist() == pytest.approx([math.sqrt(2 / 18 * 2 / 14), math.sqrt(8 / 24 * 8 / 24)])


def test_fcos_regress_range_ends_are_inclusive_and_box_edges_exclusive():
    # gt (0, 0, 24, 24): (4, 4) and (20, 4) have a largest distance of exactly 20, level 0's upper
    # end (inclusive); x = 24 lies on the right edge (distance 0: outside); on level 1 the
    # largest distance is 16 < 20
    head = tiny_fcos()
    labels, _ = fcos_targets(head, [torch.tensor([[0.0, 0.0, 24.0, 24.0]])], [torch.tensor([1])])
    assert labels[0].tolist() == [1, 1, 1, BG] * 3 + [BG] * 4
    assert labels[1].tolist() == [BG] * 4


def test_fcos_equal_areas_go_to_the_first_gt():
    head = tiny_fcos()
    labels, _ = fcos_targets(head, [torch.tensor([GT_A, GT_A])], [torch.tensor([2, 0])])
    assert labels[0][:2].tolist() == [2, 2]


def test_fcos_centre_sampling_and_normalised_targets():
    gt, label = torch.tensor([[0.0, 0.0, 32.0, 32.0]]), torch.tensor([1])
    plain = tiny_fcos(regress_ranges=((-1, INF), (-1, INF)))
    labels, _ = fcos_targets(plain, [gt], [label])
    assert labels[0].tolist() == [1] * 16 and labels[1].tolist() == [1] * 4
    # radius 1.5 strides around the centre (16, 16): level 0 keeps (4, 28) exclusive -> x, y in {12, 20};
    # level 1's 24 px radius covers the whole box
    sampled = tiny_fcos(regress_ranges=((-1, INF), (-1, INF)), center_sampling=True, norm_on_bbox=True)
    labels, targets = fcos_targets(sampled, [gt], [label])
    assert labels[0].tolist() == [BG] * 5 + [1, 1] + [BG] * 2 + [1, 1] + [BG] * 5
    assert labels[1].tolist() == [1] * 4
    assert targets[0][5].tolist() == [12 / 8, 12 / 8, 20 / 8, 20 / 8]
    assert targets[1][0].tolist() == [0.5, 0.5, 1.5, 1.5]


# -- losses on constant predictions ----------------------------------------------------------------
def constant_head(head, **biases):
    """Zero every conv weight: each output map then equals its conv's bias everywhere."""
    with torch.no_grad():
        for m in head.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.zero_()
                if m.bias is not None:
                    m.bias.zero_()
        for name, value in biases.items():
            getattr(head, name).bias.fill_(value)
    return head


def _sigmoid(x):
    return 1 / (1 + math.exp(-x))


def _bce(x, y):
    p = _sigmoid(x)
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def _focal(x, t, alpha=0.25, gamma=2.0):
    p = _sigmoid(x)
    return alpha * (1 - p) ** gamma * -math.log(p) if t else (1 - alpha) * p ** gamma * -math.log(1 - p)


def _overlap(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    enclose = (max(a[2], b[2]) - min(a[0], b[0])) * (max(a[3], b[3]) - min(a[1], b[1]))
    return inter / union, inter / union - (enclose - union) / enclose


def _centerness(cx, cy, g):
    l, t, r, b = cx - g[0], cy - g[1], g[2] - cx, g[3] - cy
    return math.sqrt(min(l, r) / max(l, r) * min(t, b) / max(t, b))


def feats_for(sizes, batch=1):
    return [torch.randn(batch, 8, h, w) for h, w in sizes]


def test_fcos_loss_matches_loop_reference():
    b, r, c = -1.0, math.log(6.0), 0.3
    head = constant_head(tiny_fcos(), conv_cls=b, conv_reg=r, conv_centerness=c).train()
    outs = head(feats_for([(4, 4), (2, 2)]))
    losses = head.loss(*outs, [GTS], [GT_LABELS], [dict(img_shape=(32, 32, 3), pad_shape=(32, 32, 3))])
    num_pos, num_elems = len(POSITIVES), 20 * 3
    ref_cls = ((num_elems - num_pos) * _focal(b, 0) + num_pos * _focal(b, 1)) / num_pos
    weighted, ctr_sum, ctr_bce = 0.0, 0.0, 0.0
    for (x, y), g, _ in POSITIVES:
        ctr = _centerness(x, y, g)
        iou, _ = _overlap([x - 6, y - 6, x + 6, y + 6], g)  # exp(r) = 6 px on every side
        weighted += ctr * -math.log(iou)
        ctr_sum += ctr
        ctr_bce += _bce(c, ctr)
    assert losses["loss_cls"].item() == pytest.approx(ref_cls, rel=1e-5)
    assert losses["loss_bbox"].item() == pytest.approx(weighted / ctr_sum, rel=1e-5)
    assert losses["loss_centerness"].item() == pytest.approx(ctr_bce / num_pos, rel=1e-5)


def test_fcos_regression_output_per_mode():
    r = math.log(6.0)
    plain = constant_head(tiny_fcos(), conv_reg=r)
    normed = constant_head(tiny_fcos(norm_on_bbox=True), conv_reg=r)
    feats = feats_for([(2, 2), (1, 1)])
    assert plain.eval()(feats)[1][1].flatten().tolist() == pytest.approx([6.0] * 4)  # exp
    assert normed.train()(feats)[1][1].flatten().tolist() == pytest.approx([r] * 4)  # relu, stride units
    assert normed.eval()(feats)[1][1].flatten().tolist() == pytest.approx([r * 16] * 4)  # x stride at test


def test_fcos_predict_scores_are_class_times_centerness():
    b, c = 1.0, -0.5
    head = constant_head(FCOSHead(num_classes=1, in_channels=8, feat_channels=8, stacked_convs=1, strides=[32],
                                  regress_ranges=((-1, INF),), norm_cfg=dict(type="GN", num_groups=2),
                                  test_cfg=dict(nms_pre=1000, score_thr=0.05, nms=dict(iou_threshold=0.5),
                                                max_per_img=100)),
                         conv_cls=b, conv_reg=math.log(10.0), conv_centerness=c).eval()
    # points (16, 16) and (48, 16): boxes 10 px on each side, clipped to the 60 px wide image
    meta = dict(img_shape=(32, 60, 3), pad_shape=(32, 64, 3), scale_factor=[2.0, 2.0, 2.0, 2.0])
    det = head.predict(feats_for([(1, 2)]), [meta], rescale=True)[0]
    assert det.scores.tolist() == pytest.approx([_sigmoid(b) * _sigmoid(c)] * 2, rel=1e-6)
    assert sorted(det.boxes.tolist()) == [pytest.approx([3, 3, 13, 13]), pytest.approx([19, 3, 29, 13])]


# -- ATSS ------------------------------------------------------------------------------------------
def brute_force_atss(anchors, level_sizes, gts, topk, ignore=None, ignore_thr=-1):
    """Per gt, level by level: the topk anchors nearest (centre distance) to the gt centre; IoU
    threshold mean + sample std over those candidates; positive if IoU >= threshold and the
    anchor centre is inside the gt by > 0.01; an anchor positive for several gts takes the one
    of highest IoU (first on ties). Ignored anchors (IoF with an ignore box > thr) are never
    candidates and stay -1 unless positive."""
    anchors, gts = anchors.double().tolist(), gts.double().tolist()
    centres = [((a[0] + a[2]) / 2, (a[1] + a[3]) / 2) for a in anchors]
    ignored = [False] * len(anchors)
    if ignore is not None:
        for i, a in enumerate(anchors):
            area = (a[2] - a[0]) * (a[3] - a[1])
            for box in ignore.double().tolist():
                iw = max(0.0, min(a[2], box[2]) - max(a[0], box[0]))
                ih = max(0.0, min(a[3], box[3]) - max(a[1], box[1]))
                ignored[i] |= iw * ih / area > ignore_thr
    best = [None] * len(anchors)  # (iou, gt index)
    for j, g in enumerate(gts):
        gc = ((g[0] + g[2]) / 2, (g[1] + g[3]) / 2)
        candidates, start = [], 0
        for size in level_sizes:
            level = [i for i in range(start, start + size) if not ignored[i]]
            level.sort(key=lambda i: math.dist(centres[i], gc))
            candidates += level[:topk]
            start += size
        ious = [_overlap(anchors[i], g)[0] for i in candidates]
        thr = statistics.mean(ious) + statistics.stdev(ious)
        for i, iou in zip(candidates, ious):
            cx, cy = centres[i]
            if iou >= thr and min(cx - g[0], cy - g[1], g[2] - cx, g[3] - cy) > 0.01:
                if best[i] is None or iou > best[i][0]:
                    best[i] = (iou, j)
    return [b[1] + 1 if b is not None else (-1 if ignored[i] else 0) for i, b in enumerate(best)]


def random_scene(seed, num_gts=5):
    gen = torch.Generator().manual_seed(seed)
    anchor_gen = AnchorGenerator(strides=[8, 16, 32], ratios=[1.0], octave_base_scale=4, scales_per_octave=1)
    sizes = [(8, 8), (4, 4), (2, 2)]
    anchors = anchor_gen.grid_anchors(sizes)
    # clustered boxes so that anchors are often candidates of several gts
    xy = torch.rand(num_gts, 2, generator=gen) * 24 + 8
    wh = torch.rand(num_gts, 2, generator=gen) * 40 + 6
    gts = torch.cat([xy, xy + wh], dim=1)
    return anchors, [a.shape[0] for a in anchors], gts


@pytest.mark.parametrize("seed", range(6))
def test_atss_assigner_matches_brute_force(seed):
    anchors, level_sizes, gts = random_scene(seed)
    labels = torch.arange(len(gts)) + 10
    ignore = torch.tensor([[40.0, 40.0, 64.0, 64.0]]) if seed % 2 else None
    result = ATSSAssigner(topk=9, ignore_iof_thr=0.5).assign(torch.cat(anchors), level_sizes, gts, ignore, labels)
    expected = brute_force_atss(torch.cat(anchors), level_sizes, gts, 9, ignore, 0.5)
    assert result.gt_inds.tolist() == expected
    assert result.labels.tolist() == [e + 9 if e > 0 else -1 for e in expected]
    assert sum(e > 0 for e in expected) > 0


def test_atss_assigner_contested_anchor_goes_to_higher_iou():
    # both gts take anchor 0 (IoU above mean + std of the 4 candidates, centre inside); g1 fits
    # it better (196/256 against 256/400) and wins
    anchors = torch.tensor([[0.0, 0.0, 16.0, 16.0], [16.0, 0.0, 32.0, 16.0], [0.0, 16.0, 16.0, 32.0],
                            [16.0, 16.0, 32.0, 32.0]])
    for gts, expected in ((torch.tensor([[1.0, 1.0, 15.0, 15.0], [0.0, 0.0, 20.0, 20.0]]), [1, 0, 0, 0]),
                          (torch.tensor([[0.0, 0.0, 20.0, 20.0], [1.0, 1.0, 15.0, 15.0]]), [2, 0, 0, 0])):
        assert ATSSAssigner(topk=4).assign(anchors, [4], gts).gt_inds.tolist() == expected
        assert brute_force_atss(anchors, [4], gts, 4) == expected
        # alone, the weaker gt would have taken the anchor
        weaker = gts[expected[0] % 2:expected[0] % 2 + 1]
        assert ATSSAssigner(topk=4).assign(anchors, [4], weaker).gt_inds.tolist() == [1, 0, 0, 0]


def tiny_atss(topk=3):
    return ATSSHead(num_classes=3, in_channels=8, feat_channels=8, stacked_convs=1,
                    norm_cfg=dict(type="GN", num_groups=2),
                    anchor_generator=AnchorGenerator(strides=[8, 16], ratios=[1.0], octave_base_scale=2,
                                                     scales_per_octave=1),
                    bbox_coder=DeltaXYWHBBoxCoder(target_stds=[0.1, 0.1, 0.2, 0.2]),
                    loss_cls=FocalLoss(), loss_bbox=GIoULoss(loss_weight=2.0),
                    loss_centerness=CrossEntropyLoss(use_sigmoid=True),
                    train_cfg=dict(assigner=ATSSAssigner(topk=topk), allowed_border=-1, pos_weight=-1),
                    test_cfg=dict(nms_pre=1000, score_thr=0.05, nms=dict(iou_threshold=0.6), max_per_img=100))


SCENE_GTS = torch.tensor([[2.0, 3.0, 19.0, 17.0], [9.0, 6.0, 31.0, 30.0]])
SCENE_LABELS = torch.tensor([2, 0])
SIZES = [(4, 4), (2, 2)]
METAS = [dict(img_shape=(32, 32, 3), pad_shape=(32, 32, 3))] * 2


def assigned_positives(head):
    anchors = torch.cat(head.anchor_generator.grid_anchors(SIZES))
    gt_inds = ATSSAssigner(topk=3).assign(anchors, [16, 4], SCENE_GTS).gt_inds
    return [(anchors[i].tolist(), SCENE_GTS[g - 1].tolist(), i) for i, g in enumerate(gt_inds.tolist()) if g > 0]


def test_atss_loss_matches_loop_reference():
    b, r, c = -2.0, 0.5, 0.2
    head = constant_head(tiny_atss(), atss_cls=b, atss_reg=r, atss_centerness=c).train()
    outs = head(feats_for(SIZES, batch=2))
    # image 1 has no gt: it still counts one positive in the averaging factor
    losses = head.loss(*outs, [SCENE_GTS, torch.zeros(0, 4)], [SCENE_LABELS, torch.zeros(0, dtype=torch.long)], METAS)
    positives = assigned_positives(head)
    num_pos = len(positives)
    avg = num_pos + 1
    ref_cls = ((2 * 20 * 3 - num_pos) * _focal(b, 0) + num_pos * _focal(b, 1)) / avg
    weighted, ctr_sum, ctr_bce = 0.0, 0.0, 0.0
    for a, g, _ in positives:
        cx, cy, w, h = (a[0] + a[2]) / 2, (a[1] + a[3]) / 2, a[2] - a[0], a[3] - a[1]
        cx, cy, w, h = cx + 0.1 * r * w, cy + 0.1 * r * h, w * math.exp(0.2 * r), h * math.exp(0.2 * r)
        _, giou = _overlap([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], g)
        ctr = _centerness((a[0] + a[2]) / 2, (a[1] + a[3]) / 2, g)
        weighted += ctr * (1 - giou)
        ctr_sum += ctr
        ctr_bce += _bce(c, ctr)
    assert num_pos >= 2
    assert losses["loss_cls"].item() == pytest.approx(ref_cls, rel=1e-5)
    assert losses["loss_bbox"].item() == pytest.approx(2.0 * weighted / max(ctr_sum, 1.0), rel=1e-5)
    assert losses["loss_centerness"].item() == pytest.approx(ctr_bce / avg, rel=1e-5)


def test_gfl_loss_matches_loop_reference():
    b, reg_max = -1.5, 4
    head = constant_head(tiny_gfl(reg_max=reg_max, octave=2), gfl_cls=b).train()
    outs = head(feats_for(SIZES, batch=2))
    losses = head.loss(*outs, [SCENE_GTS, torch.zeros(0, 4)], [SCENE_LABELS, torch.zeros(0, dtype=torch.long)], METAS)
    positives = assigned_positives(head)
    num_pos, sigma = len(positives), _sigmoid(b)
    avg = num_pos + 1
    qfl_neg = sigma ** 2 * _bce(b, 0.0)  # one class of a negative
    qfl, giou_sum = (2 * 20 - num_pos) * 3 * qfl_neg, 0.0
    for a, g, index in positives:
        stride = 8 if index < 16 else 16
        cx, cy = (a[0] + a[2]) / 2 / stride, (a[1] + a[3]) / 2 / stride
        pred = [cx - 2, cy - 2, cx + 2, cy + 2]  # uniform over 0..4 bins: expectation 2
        iou, giou = _overlap(pred, [v / stride for v in g])
        label = SCENE_LABELS[SCENE_GTS.tolist().index(g)].item()
        assert 0 <= label < 3
        qfl += abs(iou - sigma) ** 2 * _bce(b, iou) + 2 * qfl_neg
        giou_sum += sigma * (1 - giou)
    norm = max(num_pos * sigma, 1.0)
    assert losses["loss_cls"].item() == pytest.approx(qfl / avg, rel=1e-5)
    assert losses["loss_bbox"].item() == pytest.approx(2.0 * giou_sum / norm, rel=1e-5)
    # uniform logits: cross-entropy log(5) towards any bin, whatever the target
    assert losses["loss_dfl"].item() == pytest.approx(0.25 * sigma * num_pos * math.log(5) / norm, rel=1e-5)
