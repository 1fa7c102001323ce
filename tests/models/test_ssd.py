"""SSD: MMDetection checkpoint layout, default boxes, hard negative mining, softmax
post-processing, batch-padding crop and the configs.

References are independent of the code under test: the recorded mmdet 3.3 layout (or its
fingerprint), default boxes written out with the SSD formula in plain Python, a per-anchor
Python loop for assignment / cross entropy / mining / smooth L1, and hand-computed softmax scores
and boxes.
"""
import json
import math
from pathlib import Path

import pytest
import torch

from shared_paths import layout_dir, layout_fingerprint
from detzoo.config import load_config
from detzoo.errors import ConfigError
from detzoo.models.backbones.mobilenet_v1 import MobileNetV1
from detzoo.models.builder import build_detector
from detzoo.models.dense_heads.ssd_head import SSDHead
from detzoo.models.detectors.single_stage import SingleStageDetector
from detzoo.models.detectors.ssd import SSD
from detzoo.models.necks.ssd_neck import L2Norm, SSDNeck
from detzoo.models.task_modules import DeltaXYWHBBoxCoder, MaxIoUAssigner, PseudoSampler
from detzoo.models.task_modules.anchors.ssd_anchor_generator import SSDAnchorGenerator

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SSD300_BASE = CONFIGS / "_base_" / "models" / "ssd300.py"
# mmdet 3.3.0 ssd300_coco state dict: 71 tensors, 34305206 elements, fingerprint of its layout
SSD300_LAYOUT = ("ssd300_coco.json", 71, 34305206,
                 "50c594b3ad28901d30136bb8a0b4905e48c9262699a3cd6510c5e36a1eb2d348")


def _build(path):
    return build_detector(load_config(str(path))["model"])


def _plain(value):
    """Tuples -> lists, recursively (the layout file is JSON)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


# ------------------------------------------------------------------ checkpoint layout

def test_ssd300_state_dict_is_mmdet_layout_and_loads_strictly():
    model = _build(SSD300_BASE)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    name, count, elements, digest = SSD300_LAYOUT
    assert (len(ours), sum(math.prod(s) for s in ours.values())) == (count, elements)
    assert layout_fingerprint(ours.items()) == digest
    folder = layout_dir()
    if folder is not None and (folder / name).is_file():
        record = json.loads((folder / name).read_text())
        ref = {k: tuple(s) for k, s in record["layout"]}
        assert sorted(set(ref) ^ set(ours)) == [] and {k for k in ref if ref[k] != ours[k]} == set()
    # a checkpoint with those keys loads strictly and every tensor lands in the model
    g = torch.Generator().manual_seed(0)
    state = {k: torch.randn(s, generator=g) for k, s in ours.items()}
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], state[k]) for k in state)


def test_ssd300_config_matches_recorded_mmdet_config():
    folder = layout_dir()
    if folder is None or not (folder / SSD300_LAYOUT[0]).is_file():
        pytest.skip("checkpoint layout ssd300_coco.json not available")
    ref = json.loads((folder / SSD300_LAYOUT[0]).read_text())["model_cfg"]
    cfg = load_config(str(SSD300_BASE))["model"]
    neck, head, backbone = _plain(cfg["neck"]), _plain(cfg["bbox_head"]), _plain(cfg["backbone"])
    for key in ("in_channels", "out_channels", "level_strides", "level_paddings", "l2_norm_scale"):
        assert neck[key] == ref["neck"][key], key
    for key in ("depth", "with_last_pool", "ceil_mode", "out_indices", "out_feature_indices"):
        assert backbone[key] == ref["backbone"][key], key
    assert head["in_channels"] == ref["bbox_head"]["in_channels"]
    assert head["num_classes"] == ref["bbox_head"]["num_classes"]
    ref_anchors = ref["bbox_head"]["anchor_generator"]
    assert {k: v for k, v in head["anchor_generator"].items() if k != "type"} == \
        {k: v for k, v in ref_anchors.items() if k != "type"}
    assert head["bbox_coder"]["target_stds"] == ref["bbox_head"]["bbox_coder"]["target_stds"]
    assert _plain(cfg["test_cfg"]) == ref["test_cfg"]
    train = _plain({k: v for k, v in cfg["train_cfg"].items() if k != "sampler"})
    train["assigner"].pop("type")
    expected = {k: v for k, v in ref["train_cfg"].items() if k != "sampler"}
    expected["assigner"] = {k: v for k, v in expected["assigner"].items() if k != "type"}
    assert train == expected


# ------------------------------------------------------------------ default boxes

def _hand_ssd_boxes(sizes, strides, ratios, min_sizes, max_sizes):
    """Default boxes written out from the SSD formula, MMDetection's order within a location:
    min square, sqrt(min*max) square, then for each r: wide (w = min*sqrt(r)) and tall."""
    boxes = []
    for (fh, fw), s, rs, lo, hi in zip(sizes, strides, ratios, min_sizes, max_sizes):
        shapes = [(lo, lo), (math.sqrt(lo * hi), math.sqrt(lo * hi))]
        for r in rs:
            shapes += [(lo * math.sqrt(r), lo / math.sqrt(r)), (lo / math.sqrt(r), lo * math.sqrt(r))]
        for y in range(fh):
            for x in range(fw):
                cx, cy = (x + 0.5) * s, (y + 0.5) * s
                boxes += [(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2) for w, h in shapes]
    return torch.tensor(boxes, dtype=torch.float64)


def test_ssd300_default_boxes_match_the_formula():
    # SSD300 COCO (basesize_ratio_range 0.15..0.9 on 6 levels): step = floor(90 - 15) // 4 = 18,
    # ratios 15, 33, 51, 69, 87 % of 300 -> min 45, 99, 153, 207, 261 and max (ratio + 18)%
    # 99, 153, 207, 261, 315; the first level is 7%..15% -> 21..45.
    min_sizes, max_sizes = [21, 45, 99, 153, 207, 261], [45, 99, 153, 207, 261, 315]
    strides, ratios = [8, 16, 32, 64, 100, 300], [[2], [2, 3], [2, 3], [2, 3], [2], [2]]
    gen = SSDAnchorGenerator(strides=strides, ratios=ratios, basesize_ratio_range=(0.15, 0.9),
                             input_size=300, scale_major=False)
    assert gen.min_sizes == min_sizes and gen.max_sizes == max_sizes
    assert gen.num_base_anchors == [4, 6, 6, 6, 4, 4]
    sizes = [(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1)]
    ours = torch.cat(gen.grid_anchors(sizes))
    assert ours.shape == (8732, 4) and ours.dtype == torch.float32
    hand = _hand_ssd_boxes(sizes, strides, ratios, min_sizes, max_sizes)
    assert torch.allclose(ours.double(), hand, atol=1e-4, rtol=0)


def test_ssd512_sizes_and_box_count():
    # 0.1..0.9 on 7 levels: step 16, ratios 10..90 % of 512 -> int(51.2) = 51, int(133.12) =
    # 133 ...; first level 4%..10% -> 20..51. Maps 64, 32, 16, 8, 4, 2, 1.
    gen = SSDAnchorGenerator(strides=[8, 16, 32, 64, 128, 256, 512],
                             ratios=[[2], [2, 3], [2, 3], [2, 3], [2, 3], [2], [2]],
                             basesize_ratio_range=(0.1, 0.9), input_size=512, scale_major=False)
    assert gen.min_sizes == [20, 51, 133, 215, 296, 378, 460]
    assert gen.max_sizes == [51, 133, 215, 296, 378, 460, 542]
    sizes = [(64, 64), (32, 32), (16, 16), (8, 8), (4, 4), (2, 2), (1, 1)]
    assert sum(a.shape[0] for a in gen.grid_anchors(sizes)) == 24564


def test_anchor_generator_rejects_bad_settings():
    with pytest.raises(ConfigError, match="input_size=400"):
        SSDAnchorGenerator(strides=[8, 16, 32], ratios=[[2]] * 3, input_size=400)
    with pytest.raises(ConfigError, match="both min_sizes and max_sizes"):
        SSDAnchorGenerator(strides=[8], ratios=[[2]], min_sizes=[10])


# ------------------------------------------------------------------ network shapes and L2Norm

@pytest.mark.parametrize("config,sizes,channels", [
    ("_base_/models/ssd300.py", [38, 19, 10, 5, 3, 1], [512, 1024, 512, 256, 256, 256]),
    ("ssd/ssd512_coco.py", [64, 32, 16, 8, 4, 2, 1], [512, 1024, 512, 256, 256, 256, 256]),
])
def test_feature_maps_fit_the_anchor_generator(config, sizes, channels):
    size = 300 if "300" in config else 512
    with torch.device("meta"):  # shapes only: no arithmetic, no memory
        model = _build(CONFIGS / config)
        feats = model.extract_feat(torch.zeros(1, 3, size, size))
        cls_scores, bbox_preds = model.bbox_head(feats)
    assert [f.shape[-1] for f in feats] == sizes and [f.shape[1] for f in feats] == channels
    anchors_per_loc = model.bbox_head.anchor_generator.num_base_anchors
    assert [c.shape[1] for c in cls_scores] == [a * 81 for a in anchors_per_loc]
    assert [b.shape[1] for b in bbox_preds] == [a * 4 for a in anchors_per_loc]


def test_l2norm_and_extra_layers_by_hand():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 5, 3, 4, generator=g)
    norm = L2Norm(5, scale=20.0)
    with torch.no_grad():
        norm.weight.copy_(torch.arange(1.0, 6.0))
    expected = torch.empty_like(x)
    for n in range(2):
        for i in range(3):
            for j in range(4):
                length = math.sqrt(sum(float(x[n, c, i, j]) ** 2 for c in range(5)))
                for c in range(5):
                    expected[n, c, i, j] = (c + 1) * float(x[n, c, i, j]) / length
    assert torch.allclose(norm(x), expected, atol=1e-5)
    neck = SSDNeck(in_channels=(5, 6), out_channels=(5, 6, 8), level_strides=(2,), level_paddings=(1,))
    assert neck.l2_norm.weight.detach().tolist() == [20.0] * 5
    feat = torch.randn(1, 6, 7, 7, generator=g)
    out = neck((x[:1], feat))
    first, second = neck.extra_layers[0]
    hand = torch.relu(torch.nn.functional.conv2d(
        torch.relu(torch.nn.functional.conv2d(feat, first.conv.weight, first.conv.bias)),
        second.conv.weight, second.conv.bias, stride=2, padding=1))
    assert out[1] is feat and torch.allclose(out[2], hand, atol=1e-6) and out[2].shape[-1] == 4


# ------------------------------------------------------------------ a tiny head

TRAIN_CFG = dict(assigner=MaxIoUAssigner(pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.0,
                                         ignore_iof_thr=-1, gt_max_assign_all=False),
                 sampler=PseudoSampler(), smoothl1_beta=1.0, allowed_border=-1, pos_weight=-1,
                 neg_pos_ratio=3)
TEST_CFG = dict(nms_pre=1000, nms=dict(iou_threshold=0.45), min_bbox_size=0, score_thr=0.02,
                max_per_img=200)


def _tiny_head(num_classes=3):
    # 32x32 image, maps 4x4 (stride 8) and 2x2 (stride 16), 4 boxes per location: 80 boxes
    gen = SSDAnchorGenerator(strides=[8, 16], ratios=[[2], [2]], min_sizes=[8, 16],
                             max_sizes=[16, 32], scale_major=False)
    return SSDHead(num_classes=num_classes, in_channels=(4, 4), anchor_generator=gen,
                   bbox_coder=DeltaXYWHBBoxCoder(target_stds=(0.1, 0.1, 0.2, 0.2)),
                   train_cfg=TRAIN_CFG, test_cfg=TEST_CFG)


def _iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _reference_loss(anchors, cls, reg, gts, num_classes, ratio=3):
    """Per-anchor Python loop: MaxIoU assignment (0.5 / 0.5, each gt also claims its best
    anchor), softmax cross entropy, all positives + top ratio*P negatives, smooth L1 (beta 1)."""
    total_cls = total_box = avg = 0.0
    num_mined = []
    for img, (boxes, labels) in enumerate(gts):
        n = len(anchors)
        assigned = [-1] * n
        if boxes:
            ious = [[_iou(a, g) for g in boxes] for a in anchors]
            for i in range(n):
                best = max(range(len(boxes)), key=lambda j: (ious[i][j], -j))
                assigned[i] = best if ious[i][best] >= 0.5 else -1
            for j in range(len(boxes)):
                best_anchor = max(range(n), key=lambda i: (ious[i][j], -i))
                assigned[best_anchor] = j
        ce = []
        for i in range(n):
            logits = [float(v) for v in cls[img][i]]
            target = labels[assigned[i]] if assigned[i] >= 0 else num_classes
            ce.append(math.log(sum(math.exp(v) for v in logits)) - logits[target])
        pos = [i for i in range(n) if assigned[i] >= 0]
        neg_losses = sorted((ce[i] for i in range(n) if assigned[i] < 0), reverse=True)
        k = min(ratio * len(pos), len(neg_losses))
        num_mined.append((k, len(neg_losses)))
        total_cls += sum(ce[i] for i in pos) + sum(neg_losses[:k])
        for i in pos:
            a, g = anchors[i], boxes[assigned[i]]
            aw, ah, gw, gh = a[2] - a[0], a[3] - a[1], g[2] - g[0], g[3] - g[1]
            target = [((g[0] + g[2]) - (a[0] + a[2])) / 2 / aw / 0.1,
                      ((g[1] + g[3]) - (a[1] + a[3])) / 2 / ah / 0.1,
                      math.log(gw / aw) / 0.2, math.log(gh / ah) / 0.2]
            for d in range(4):
                diff = abs(float(reg[img][i][d]) - target[d])
                total_box += 0.5 * diff * diff if diff < 1.0 else diff - 0.5
        avg += max(len(pos), 1)
    return total_cls / avg, total_box / avg, num_mined


def _flat(maps, channels):
    return torch.cat([m.permute(0, 2, 3, 1).reshape(m.shape[0], -1, channels) for m in maps], 1)


def test_loss_mines_top_negatives_like_a_loop_reference():
    head = _tiny_head()
    g = torch.Generator().manual_seed(7)
    cls_scores = [torch.randn(3, 16, s, s, generator=g) * 2 for s in (4, 2)]
    bbox_preds = [torch.randn(3, 16, s, s, generator=g) * 0.5 for s in (4, 2)]
    gts = [([(2.0, 3.0, 13.0, 12.0), (9.5, 7.0, 30.0, 29.0)], [1, 2]),
           ([(1.0, 0.5, 9.0, 10.0)], [0]),
           ([], [])]  # no object: no loss, but still 1 in the divisor
    metas = [dict(img_shape=(32, 32, 3), pad_shape=(32, 32, 3))] * 3
    losses = head.loss(cls_scores, bbox_preds, [torch.tensor(b).reshape(-1, 4) for b, _ in gts],
                       [torch.tensor(l, dtype=torch.long) for _, l in gts], metas)
    anchors = torch.cat(head.priors_of([(4, 4), (2, 2)], "cpu")).tolist()
    ref_cls, ref_box, mined = _reference_loss(anchors, _flat(cls_scores, 4), _flat(bbox_preds, 4), gts, 3)
    assert 0 < mined[0][0] < mined[0][1]  # mining really drops negatives
    assert mined[2] == (0, 80)
    assert float(losses["loss_cls"]) == pytest.approx(ref_cls, rel=1e-5)
    assert float(losses["loss_bbox"]) == pytest.approx(ref_box, rel=1e-5)
    # using every negative would give a different (larger) loss
    everything = _reference_loss(anchors, _flat(cls_scores, 4), _flat(bbox_preds, 4), gts, 3, ratio=1000)[0]
    assert everything > ref_cls * 1.2


def test_post_processing_is_softmax_with_background_last():
    head = _tiny_head(num_classes=3).eval()
    assert head.use_sigmoid_cls is False and head.cls_out_channels == 4
    cls_scores = [torch.zeros(1, 16, 4, 4), torch.zeros(1, 16, 2, 2)]
    for level in cls_scores:
        level[0, 3::4] = 10.0  # background logit of every box: every class prob ~ 4.5e-5
    # level 0, location (0, 0), box 0 (the 8x8 square) and level 1, location (1, 1), box 2
    # (the wide box of ratio 2): logits class0 0, class1 5, class2 4, background 0
    for level, a, (y, x) in ((0, 0, (0, 0)), (1, 2, (1, 1))):
        cls_scores[level][0, a * 4:a * 4 + 4, y, x] = torch.tensor([0.0, 5.0, 4.0, 0.0])
    bbox_preds = [torch.zeros(1, 16, 4, 4), torch.zeros(1, 16, 2, 2)]
    meta = dict(img_shape=(32, 32, 3), pad_shape=(32, 32, 3), scale_factor=[2.0, 2.0, 2.0, 2.0])
    result = head.predict_by_feat(cls_scores, bbox_preds, [meta], rescale=True)[0]
    z = 1 + math.exp(5) + math.exp(4) + 1
    p1, p2 = math.exp(5) / z, math.exp(4) / z  # class 0 (1 / z = 0.005) is under score_thr 0.02
    half = 16 * math.sqrt(2) / 2, 16 / math.sqrt(2) / 2  # wide box of the 16-px level
    wide = [24 - half[0], 24 - half[1], min(24 + half[0], 32.0), 24 + half[1]]
    expected = sorted([(p1, 1, [0, 0, 8, 8]), (p1, 1, wide), (p2, 2, [0, 0, 8, 8]), (p2, 2, wide)],
                      key=lambda t: -t[0])
    assert result.scores.tolist() == pytest.approx([e[0] for e in expected], rel=1e-5)
    assert sorted(zip(result.labels.tolist(), [tuple(round(v, 3) for v in b) for b in result.boxes.tolist()])) == \
        sorted((e[1], tuple(round(v / 2, 3) for v in e[2])) for e in expected)


# ------------------------------------------------------------------ the detector

def test_ssd_ignores_padding_added_by_collation():
    torch.manual_seed(0)
    gen = SSDAnchorGenerator(strides=[16, 32, 64, 64, 64, 64], ratios=[[2]] * 6,
                             min_sizes=[16, 24, 32, 40, 48, 56], max_sizes=[24, 32, 40, 48, 56, 64],
                             scale_major=False)
    head = SSDHead(num_classes=2, in_channels=(512, 1024, 512, 256, 256, 128), kernel_size=1,
                   anchor_generator=gen, bbox_coder=DeltaXYWHBBoxCoder(target_stds=(0.1, 0.1, 0.2, 0.2)),
                   test_cfg=dict(TEST_CFG, score_thr=0.0))
    model = SSD(MobileNetV1(with_extra_blocks=True), None, head).eval()
    img = torch.randn(1, 3, 64, 64)
    padded = torch.zeros(1, 3, 96, 96)
    padded[..., :64, :64] = img
    meta = dict(img_shape=(64, 64, 3), pad_shape=(64, 64, 3), scale_factor=[1.0] * 4)
    with torch.no_grad():
        plain = model.predict(img, [meta])[0]
        cropped = model.predict(padded, [meta])[0]
        uncropped = SingleStageDetector.predict(model, padded, [meta])[0]
    assert torch.equal(plain.boxes, cropped.boxes) and torch.equal(plain.scores, cropped.scores)
    assert len(plain) > 0 and not (len(uncropped) == len(plain) and torch.equal(uncropped.scores, plain.scores))


# ------------------------------------------------------------------ configs

def _has(module, name):
    import importlib

    return hasattr(importlib.import_module(module), name)


@pytest.mark.parametrize("name,size", [("ssd300_coco", 300), ("ssd512_coco", 512)])
def test_coco_configs_pipelines(name, size):
    if not _has("detzoo.data.transforms", "PhotoMetricDistortion"):
        pytest.skip("the SSD augmentations (detzoo.data.transforms.augment) are not available")
    cfg = load_config(str(CONFIGS / "ssd" / f"{name}.py"))
    train = cfg["data"]["train"]
    assert train["type"].__name__ == "RepeatDataset" and train["times"] == 5
    steps = {s["type"].__name__: s for s in train["dataset"]["pipeline"]}
    assert list(steps) == ["LoadImageFromFile", "LoadAnnotations", "Expand", "MinIoURandomCrop", "Resize",
                           "RandomFlip", "PhotoMetricDistortion", "Normalize", "DefaultFormatBundle", "Collect"]
    assert steps["Resize"]["img_scale"] == (size, size) and steps["Resize"]["keep_ratio"] is False
    assert steps["Normalize"]["std"] == [1.0, 1.0, 1.0] and steps["Normalize"]["to_rgb"] is True
    test_steps = cfg["data"]["test"]["pipeline"][1]
    assert test_steps["img_scale"] == (size, size)
    assert "Pad" not in [s["type"].__name__ for s in test_steps["transforms"]]
    assert cfg["optimizer"]["lr"] == 2e-3 and cfg["auto_scale_lr"]["base_batch_size"] == 64
    assert cfg["runner"]["max_epochs"] == 24 and cfg["lr_config"]["step"] == [16, 22]
    assert cfg["model"]["bbox_head"]["anchor_generator"]["input_size"] == size


def test_mobilenet_voc_config_builds_paddle_ssd():
    if not _has("detzoo.data", "VOCDataset"):
        pytest.skip("detzoo.data.VOCDataset is not available")
    if not _has("detzoo.data.transforms", "PhotoMetricDistortion"):
        pytest.skip("the SSD augmentations (detzoo.data.transforms.augment) are not available")
    cfg = load_config(str(CONFIGS / "ssd" / "ssd300_mobilenet_v1_voc.py"))
    model = build_detector(cfg["model"])
    head = model.bbox_head
    assert head.num_classes == 20 and head.cls_convs[0][0].kernel_size == (1, 1)
    gen = head.anchor_generator
    # PaddleDetection MultiBoxHead: 3 priors on the first level (no max size), 6 elsewhere
    assert gen.num_base_anchors == [3, 6, 6, 6, 6, 6]
    sizes = [(19, 19), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)]
    anchors = gen.grid_anchors(sizes)
    assert sum(a.shape[0] for a in anchors) == 1917
    # Paddle prior centre: (i + 0.5) * 300 / 19 on the first level; first box 60x60
    assert anchors[0][3 * 20].tolist() == pytest.approx([1.5 * 300 / 19 - 30, 1.5 * 300 / 19 - 30,
                                                         1.5 * 300 / 19 + 30, 1.5 * 300 / 19 + 30], abs=1e-4)
    norm = [s for s in cfg["data"]["test"]["pipeline"][1]["transforms"] if s["type"].__name__ == "Normalize"][0]
    assert norm["mean"] == [127.5] * 3 and norm["std"] == [127.502231] * 3
