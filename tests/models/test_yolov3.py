"""YOLOv3 (MMDetection 3.x numerics): checkpoint layout, anchors, box coding, grid assignment,
losses and post-processing, each against a hand-worked case or a slow loop reference written
here from the MMDetection sources (task_modules/prior_generators/anchor_generator.py
YOLOAnchorGenerator, coders/yolo_bbox_coder.py, assigners/grid_assigner.py,
dense_heads/yolo_head.py)."""
import importlib.util
import json
import math

import pytest
import torch

from detzoo.config import load_config
from detzoo.data.norm_presets import NORM_PRESETS
from detzoo.engine.checkpoint import load_model_weights
from detzoo.models.backbones.darknet import Darknet
from detzoo.models.builder import build_detector
from detzoo.models.dense_heads.yolo_head import YOLOV3Head
from detzoo.models.losses import MSELoss
from detzoo.models.losses import CrossEntropyLoss
from detzoo.models.task_modules import GridAssigner, YOLOAnchorGenerator, YOLOBBoxCoder
from detzoo.zoo.configs import configs_root

from shared_paths import MMDET_LAYOUTS

LAYOUT_NAME = "yolov3_d53_8xb8-ms-608-273e_coco"
MODEL_BASE = configs_root() / "yolo" / "_base_" / "yolov3_d53.py"


def layout():
    path = MMDET_LAYOUTS / f"{LAYOUT_NAME}.json"
    if not path.is_file():
        pytest.fail(f"checkpoint layout {path} is missing (shared/ must sit beside the checkout)")
    return json.loads(path.read_text())


def has_module(name):
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def augment_steps_available():
    import detzoo.data.transforms as transforms

    return all(hasattr(transforms, n) for n in ("Expand", "MinIoURandomCrop", "PhotoMetricDistortion"))


@pytest.fixture(scope="module")
def yolov3():
    torch.manual_seed(0)
    return build_detector(load_config(str(MODEL_BASE))["model"])


# -- checkpoint layout -------------------------------------------------------------------------
def test_state_dict_matches_mmdetection_layout(yolov3):
    ref = [(k, tuple(shape)) for k, shape in layout()["layout"]]
    mine = [(k, tuple(v.shape)) for k, v in yolov3.state_dict().items()]
    assert sorted(mine) == sorted(ref)
    assert len(mine) == layout()["num_tensors"]


def test_layout_state_dict_loads_strictly_and_is_used(yolov3, tmp_path):
    gen = torch.Generator().manual_seed(0)
    state = {}
    for key, shape in layout()["layout"]:
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=gen) + 0.5
        else:
            state[key] = torch.randn(shape, generator=gen) * 0.01
    path = tmp_path / "mmdet_style.pth"
    torch.save({"meta": {"CLASSES": [f"c{i}" for i in range(80)]}, "state_dict": state}, path)
    load_model_weights(yolov3, str(path), strict=True)
    for key, value in yolov3.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_config_matches_reference_record(yolov3):
    info = layout()
    test_cfg, model_cfg = info["test_cfg"], info["model_cfg"]
    head = yolov3.bbox_head
    assert head.test_cfg["nms_pre"] == test_cfg["nms_pre"] == 1000
    assert head.test_cfg["min_bbox_size"] == test_cfg["min_bbox_size"]
    assert head.test_cfg["score_thr"] == test_cfg["score_thr"]
    assert head.test_cfg["conf_thr"] == test_cfg["conf_thr"]
    assert head.test_cfg["nms"]["iou_threshold"] == test_cfg["nms"]["iou_threshold"]
    assert head.test_cfg["max_per_img"] == test_cfg["max_per_img"]
    assigner, ref_assigner = head.train_cfg["assigner"], info["train_cfg"]["assigner"]
    assert isinstance(assigner, GridAssigner)
    assert (assigner.pos_iou_thr, assigner.neg_iou_thr, assigner.min_pos_iou) == (
        ref_assigner["pos_iou_thr"], ref_assigner["neg_iou_thr"], ref_assigner["min_pos_iou"])
    ref_head = model_cfg["bbox_head"]
    for name in ("loss_cls", "loss_conf", "loss_xy", "loss_wh"):
        loss = getattr(head, name)
        assert loss.loss_weight == ref_head[name]["loss_weight"], name
        assert loss.reduction == ref_head[name]["reduction"], name
        assert isinstance(loss, MSELoss if ref_head[name]["type"] == "MSELoss" else CrossEntropyLoss)
    assert head.loss_cls.use_sigmoid and head.loss_conf.use_sigmoid and head.loss_xy.use_sigmoid
    gen = ref_head["anchor_generator"]
    assert head.prior_generator.base_sizes == [[tuple(map(float, s)) for s in lvl] for lvl in gen["base_sizes"]]
    assert head.featmap_strides == ref_head["featmap_strides"]
    assert yolov3.backbone.out_indices == tuple(model_cfg["backbone"]["out_indices"])
    assert yolov3.backbone.norm_eval  # mmdet Darknet default (not in the recorded config)
    pre = info["preprocess"]["data_preprocessor"]
    assert NORM_PRESETS["yolo"] == dict(mean=pre["mean"], std=pre["std"], to_rgb=pre["bgr_to_rgb"])


@pytest.mark.parametrize("name, train_scale, test_scale", [
    ("yolov3_d53_mstrain-608_273e_coco", [(320, 320), (608, 608)], (608, 608)),
    ("yolov3_d53_mstrain-416_273e_coco", [(320, 320), (416, 416)], (416, 416)),
    ("yolov3_d53_320_273e_coco", [(320, 320)], (320, 320)),
])
def test_mmdet_configs(name, train_scale, test_scale):
    if not augment_steps_available():
        pytest.skip("detzoo.data.transforms has no Expand/MinIoURandomCrop/PhotoMetricDistortion yet")
    cfg = load_config(name)
    base = load_config(str(MODEL_BASE))
    assert cfg["model"] == base["model"]
    resize = [s for s in cfg["data"]["train"]["pipeline"] if s["type"].__name__ == "Resize"][0]
    scales = resize["img_scale"]
    assert [tuple(s) for s in (scales if isinstance(scales[0], (list, tuple)) else [scales])] == train_scale
    assert tuple(cfg["data"]["test"]["pipeline"][1]["img_scale"]) == test_scale
    norm = [s for s in cfg["data"]["train"]["pipeline"] if s["type"].__name__ == "Normalize"][0]
    assert (norm["mean"], norm["std"], norm["to_rgb"]) == ([0.0] * 3, [255.0] * 3, True)
    assert cfg["runner"]["max_epochs"] == 273 and cfg["lr_config"]["step"] == [218, 246]


# -- backbone ----------------------------------------------------------------------------------
def test_darknet_stages_and_frozen_stages():
    net = Darknet(out_indices=(0, 1, 2, 3, 4, 5), frozen_stages=2).eval()
    with torch.no_grad():
        outs = net(torch.zeros(1, 3, 64, 64))
    assert [tuple(o.shape[1:]) for o in outs] == [(32, 64, 64), (64, 32, 32), (128, 16, 16),
                                                  (256, 8, 8), (512, 4, 4), (1024, 2, 2)]
    assert net.out_channels == [32, 64, 128, 256, 512, 1024]
    # mmdet freezes cr_blocks[:frozen_stages]: conv1 and conv_res_block1
    assert not any(p.requires_grad for p in net.conv1.parameters())
    assert not any(p.requires_grad for p in net.conv_res_block1.parameters())
    assert all(p.requires_grad for p in net.conv_res_block2.parameters())
    net.train()
    assert not net.conv_res_block1.training and not net.conv_res_block3.conv.bn.training  # norm_eval
    assert isinstance(net.conv1.activate, torch.nn.LeakyReLU) and net.conv1.activate.negative_slope == 0.1


def test_darknet_residual_block_adds_identity():
    net = Darknet(out_indices=(1,)).eval()
    block = net.conv_res_block1.res0
    x = torch.randn(1, 64, 6, 6)
    with torch.no_grad():
        branch = torch.nn.functional.leaky_relu(block.conv2.bn(block.conv2.conv(
            torch.nn.functional.leaky_relu(block.conv1.bn(block.conv1.conv(x)), 0.1))), 0.1)
        assert torch.allclose(block(x), x + branch, atol=1e-6)


# -- anchors -----------------------------------------------------------------------------------
SIZES = [[(116, 90), (156, 198), (373, 326)], [(30, 61), (62, 45), (59, 119)], [(10, 13), (16, 30), (33, 23)]]


def test_yolo_anchors_by_hand():
    gen = YOLOAnchorGenerator(strides=[32, 16, 8], base_sizes=SIZES)
    sizes = [(2, 3), (4, 6), (8, 12)]
    anchors = gen.grid_anchors(sizes)
    for level, ((h, w), stride) in enumerate(zip(sizes, (32, 16, 8))):
        assert anchors[level].shape == (h * w * 3, 4)
        for y in range(h):
            for x in range(w):
                for a, (aw, ah) in enumerate(SIZES[level]):
                    cx, cy = (x + 0.5) * stride, (y + 0.5) * stride  # centre of the cell
                    expected = [cx - aw / 2, cy - ah / 2, cx + aw / 2, cy + ah / 2]
                    assert anchors[level][(y * w + x) * 3 + a].tolist() == pytest.approx(expected)
    # one value worked out fully: stride 32, cell (x=2, y=1), anchor (156, 198) -> centre (80, 48)
    assert anchors[0][(1 * 3 + 2) * 3 + 1].tolist() == [2.0, -51.0, 158.0, 147.0]


def test_responsible_flags_by_hand():
    gen = YOLOAnchorGenerator(strides=[32, 16], base_sizes=[[(50, 50), (80, 80)], [(10, 10), (20, 20)]])
    gts = torch.tensor([[90.0, 20.0, 110.0, 80.0],   # centre (100, 50): cell (3, 1) at 32, (6, 3) at 16
                        [0.0, 0.0, 8.0, 8.0]])       # centre (4, 4): cell (0, 0) on both levels
    flags = gen.responsible_flags([(2, 4), (4, 8)], gts)
    expected32 = torch.zeros(2 * 4, dtype=torch.bool)
    expected32[[1 * 4 + 3, 0]] = True
    expected16 = torch.zeros(4 * 8, dtype=torch.bool)
    expected16[[3 * 8 + 6, 0]] = True
    assert torch.equal(flags[0], expected32.repeat_interleave(2))
    assert torch.equal(flags[1], expected16.repeat_interleave(2))


# -- box coder ---------------------------------------------------------------------------------
def test_yolo_coder_by_hand():
    coder = YOLOBBoxCoder()
    anchor = torch.tensor([[16.0, 0.0, 80.0, 32.0]])  # centre (48, 16), 64 x 32
    gt = torch.tensor([[40.0, 10.0, 70.0, 30.0]])     # centre (55, 20), 30 x 20
    target = coder.encode(anchor, gt, torch.tensor([32.0]))
    expected = [(55 - 48) / 32 + 0.5, (20 - 16) / 32 + 0.5, math.log(30 / 64), math.log(20 / 32)]
    assert target[0].tolist() == pytest.approx(expected, abs=1e-6)
    # decode takes sigmoid(tx), sigmoid(ty) (already in [0, 1]) and raw tw, th
    assert coder.decode(anchor, target, 32)[0].tolist() == pytest.approx([40, 10, 70, 30], abs=1e-4)
    # centre targets are clamped into (0, 1): a centre two cells away gives 1 - eps
    far = coder.encode(anchor, torch.tensor([[100.0, 0.0, 120.0, 32.0]]), 32)
    assert far[0, 0].item() == pytest.approx(1 - 1e-6) and far[0, 1].item() == pytest.approx(0.5)
    # decoding never clips to any image: a box may leave it
    out = coder.decode(anchor, torch.tensor([[0.0, 0.0, 1.0, 1.0]]), 32)
    half_w, half_h = 32 * math.e, 16 * math.e
    assert out[0].tolist() == pytest.approx([32 - half_w, 0 - half_h, 32 + half_w, 0 + half_h], abs=1e-4)


# -- grid assigner -----------------------------------------------------------------------------
def test_grid_assigner_by_hand():
    gts = torch.tensor([[0.0, 0.0, 10.0, 10.0],     # G1
                        [20.0, 0.0, 30.0, 10.0],    # G2
                        [60.0, 0.0, 70.0, 10.0],    # G3
                        [0.0, 0.0, 10.0, 10.0]])    # G4, a copy of G1
    anchors = torch.tensor([[0.0, 0.0, 10.0, 10.0],    # A0 resp, IoU 1 with G1 and G4
                            [0.0, 0.0, 10.0, 10.0],    # A1 not resp, IoU 1
                            [20.0, 0.0, 30.0, 12.0],   # A2 resp, IoU 0.83 with G2
                            [0.0, 0.0, 10.0, 20.0],    # A3 resp, IoU 0.5 with G1 (not > 0.5)
                            [40.0, 40.0, 50.0, 50.0],  # A4 not resp, IoU 0
                            [60.0, 0.0, 80.0, 20.0],   # A5 resp, IoU 0.25 with G3 (its best)
                            [60.0, 0.0, 70.0, 12.0]])  # A6 not resp, IoU 0.83 with G3
    flags = torch.tensor([True, False, True, True, False, True, False])
    result = GridAssigner(0.5, 0.5, 0.0).assign(anchors, flags, gts, torch.tensor([5, 6, 7, 8]))
    # A0: positive for G1 in step 3, then claimed by G1 and G4 in step 4, the later G4 wins.
    # A1, A6: best IoU > 0.5 (not negative) but not responsible -> ignored.
    # A3: IoU exactly 0.5 -> negative (<= neg_iou_thr), not positive (> pos_iou_thr needed).
    # A5: only 0.25, but G3's best responsible anchor -> positive in step 4.
    assert result.gt_inds.tolist() == [4, -1, 2, 0, 0, 3, -1]
    assert result.labels.tolist() == [8, -1, 6, -1, -1, 7, -1]
    assert result.max_overlaps.tolist() == pytest.approx([1, -1, 100 / 120, 0.5, -1, 0.25, -1])
    no_gt = GridAssigner(0.5, 0.5, 0.0).assign(anchors, flags, torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))
    assert no_gt.gt_inds.tolist() == [0] * 7


def slow_grid_assign(anchors, flags, gts, pos_thr, neg_thr, min_pos, assign_all):
    """MMDetection GridAssigner.assign, one anchor / one gt at a time."""
    def iou(a, b):
        iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = iw * ih
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return inter / max(union, 1e-6)

    anchors, gts, flags = anchors.tolist(), gts.tolist(), flags.tolist()
    ov = [[iou(g, a) for a in anchors] for g in gts]
    inds = [-1] * len(anchors)
    for j in range(len(anchors)):
        if 0 <= max(ov[i][j] for i in range(len(gts))) <= neg_thr:
            inds[j] = 0
    ov = [[v if flags[j] else -1.0 for j, v in enumerate(row)] for row in ov]
    for j in range(len(anchors)):
        col = [ov[i][j] for i in range(len(gts))]
        best = max(col)
        if flags[j] and best > pos_thr:
            inds[j] = col.index(best) + 1
    for i, row in enumerate(ov):
        best = max(row)
        if best > min_pos:
            if assign_all:
                for j in range(len(anchors)):
                    if row[j] == best and flags[j]:
                        inds[j] = i + 1
            elif flags[row.index(best)]:
                inds[row.index(best)] = i + 1
    return inds


@pytest.mark.parametrize("seed", range(6))
def test_grid_assigner_matches_slow_reference(seed):
    gen = torch.Generator().manual_seed(seed)
    # integer-grid boxes make exact IoU ties (and duplicate gts) common
    xy = torch.randint(0, 40, (60, 2), generator=gen).float()
    wh = torch.randint(4, 30, (60, 2), generator=gen).float()
    anchors = torch.cat([xy, xy + wh], dim=1)
    gts = anchors[torch.randint(0, 60, (5,), generator=gen)] + torch.randint(-3, 4, (5, 4), generator=gen).float()
    gts[:, 2:] = torch.maximum(gts[:, 2:], gts[:, :2] + 1)
    gts = torch.cat([gts, gts[:1]])  # a duplicate ground truth
    flags = torch.rand(60, generator=gen) < 0.5
    for assign_all in (True, False):
        result = GridAssigner(0.5, 0.5, 0.0, gt_max_assign_all=assign_all).assign(anchors, flags, gts)
        assert result.gt_inds.tolist() == slow_grid_assign(anchors, flags, gts, 0.5, 0.5, 0.0, assign_all)


# -- loss --------------------------------------------------------------------------------------
def tiny_head(num_classes=2, anchor=(8, 8), **test_cfg):
    """One level, stride 8, one anchor per cell (8 x 8 by default); MMDetection's YOLOv3 loss
    settings."""
    return YOLOV3Head(
        num_classes=num_classes, in_channels=[4], out_channels=[4],
        anchor_generator=YOLOAnchorGenerator(strides=[8], base_sizes=[[anchor]]), featmap_strides=[8],
        loss_cls=CrossEntropyLoss(use_sigmoid=True, loss_weight=1.0, reduction="sum"),
        loss_conf=CrossEntropyLoss(use_sigmoid=True, loss_weight=1.0, reduction="sum"),
        loss_xy=CrossEntropyLoss(use_sigmoid=True, loss_weight=2.0, reduction="sum"),
        loss_wh=MSELoss(loss_weight=2.0, reduction="sum"),
        train_cfg=dict(assigner=GridAssigner(0.5, 0.5, 0.0)), test_cfg=test_cfg or None)


def bce(logit, target):
    p = 1 / (1 + math.exp(-logit))
    return -(target * math.log(p) + (1 - target) * math.log(1 - p))


def test_loss_by_hand():
    head = tiny_head()
    # a 2 x 2 grid of 8 px cells: anchors [0,0,8,8] [8,0,16,8] [0,8,8,16] [8,8,16,16]
    gen = torch.Generator().manual_seed(3)
    pred = torch.randn(1, 7, 2, 2, generator=gen)
    gt = torch.tensor([[9.0, 1.0, 15.0, 9.0]])  # centre (12, 5) in cell (1, 0); IoU 42 / 70 = 0.6 with anchor 1
    losses = head.loss([pred], [gt], [torch.tensor([1])], [dict(pad_shape=(16, 16, 3))])
    p = lambda k, idx: pred[0, k].reshape(-1)[idx].item()  # noqa: E731  channel k of anchor idx
    # anchor 1 is the only positive; anchors 0, 2, 3 have IoU 0, 0, 6 / 106 -> negatives
    t_xy = [(12 - 12) / 8 + 0.5, (5 - 4) / 8 + 0.5]
    t_wh = [math.log(6 / 8), math.log(8 / 8)]
    expected = {
        "loss_cls": bce(p(5, 1), 0.0) + bce(p(6, 1), 1.0),
        "loss_conf": bce(p(4, 1), 1.0) + sum(bce(p(4, i), 0.0) for i in (0, 2, 3)),
        "loss_xy": 2 * (bce(p(0, 1), t_xy[0]) + bce(p(1, 1), t_xy[1])),
        "loss_wh": 2 * ((p(2, 1) - t_wh[0]) ** 2 + (p(3, 1) - t_wh[1]) ** 2),
    }
    assert {k: v.item() for k, v in losses.items()} == pytest.approx(expected, rel=1e-5)


def test_loss_ignores_non_responsible_overlaps_and_sums_images():
    head = tiny_head(anchor=(16, 8))
    gen = torch.Generator().manual_seed(4)
    pred = torch.randn(2, 7, 2, 2, generator=gen)
    # 16 x 8 anchors: [-4,0,12,8] [4,0,20,8] [-4,8,12,16] [4,8,20,16]. Image 0: a box whose
    # centre (8.5, 4) lies in cell (1, 0): anchor 1 (IoU 104 / 160 = 0.65) is positive; anchor 0
    # (IoU 96 / 168 = 0.57 > 0.5 but not responsible) is ignored; anchors 2, 3 (IoU 0) are
    # negatives. Image 1 has no box: all four are negatives.
    gt = torch.tensor([[0.0, 0.0, 17.0, 8.0]])
    losses = head.loss([pred], [gt, torch.zeros(0, 4)], [torch.tensor([0]), torch.zeros(0, dtype=torch.long)],
                       [dict(pad_shape=(16, 16, 3))] * 2)
    p = lambda b, k, idx: pred[b, k].reshape(-1)[idx].item()  # noqa: E731
    conf = (bce(p(0, 4, 1), 1.0) + sum(bce(p(0, 4, i), 0.0) for i in (2, 3))
            + sum(bce(p(1, 4, i), 0.0) for i in range(4)))
    assert losses["loss_conf"].item() == pytest.approx(conf, rel=1e-5)
    assert losses["loss_cls"].item() == pytest.approx(bce(p(0, 5, 1), 1.0) + bce(p(0, 6, 1), 0.0), rel=1e-5)


# -- post-processing ---------------------------------------------------------------------------
def slow_predict(pred_maps, strides, sizes, num_classes, cfg, scale_factor):
    """MMDetection 3.x YOLOV3Head.predict_by_feat + _bbox_post_process for one image, with loops."""
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    attrib = 5 + num_classes
    cands = []  # (box, objectness, class scores) in flat anchor order
    for level, (pm, stride) in enumerate(zip(pred_maps, strides)):
        _, _, h, w = pm.shape
        for y in range(h):
            for x in range(w):
                for a, (aw, ah) in enumerate(sizes[level]):
                    v = [pm[0, a * attrib + k, y, x].item() for k in range(attrib)]
                    cx = (x + 0.5) * stride + (sig(v[0]) - 0.5) * stride
                    cy = (y + 0.5) * stride + (sig(v[1]) - 0.5) * stride
                    bw, bh = aw * math.exp(v[2]), ah * math.exp(v[3])
                    box = [cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2]
                    cands.append((box, sig(v[4]), [sig(c) for c in v[5:]]))
    cands = [c for c in cands if c[1] >= cfg["conf_thr"]]
    pairs = [(s, lab, c[0], c[1]) for c in cands for lab, s in enumerate(c[2]) if s > cfg["score_thr"]]
    pairs.sort(key=lambda t: -t[0])
    pairs = pairs[:cfg["nms_pre"]]
    dets = []
    for s, lab, box, obj in pairs:
        sx, sy = scale_factor[0], scale_factor[1]
        box = [box[0] / sx, box[1] / sy, box[2] / sx, box[3] / sy]
        if box[2] - box[0] > cfg["min_bbox_size"] and box[3] - box[1] > cfg["min_bbox_size"]:
            dets.append((s * obj, lab, box))
    dets.sort(key=lambda t: -t[0])

    def iou(a, b):
        iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = iw * ih
        return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)

    kept = []
    for d in dets:
        if all(k[1] != d[1] or iou(k[2], d[2]) <= cfg["nms"]["iou_threshold"] for k in kept):
            kept.append(d)
    return kept[:cfg["max_per_img"]]


@pytest.mark.parametrize("seed", [0, 1])
def test_predict_matches_slow_reference(seed):
    sizes = [[(40, 30), (60, 70)], [(10, 14), (20, 16)]]
    cfg = dict(nms_pre=40, min_bbox_size=12, score_thr=0.3, conf_thr=0.2,
               nms=dict(type="nms", iou_threshold=0.45), max_per_img=15)
    head = YOLOV3Head(num_classes=3, in_channels=[4, 4], out_channels=[4, 4],
                      anchor_generator=YOLOAnchorGenerator(strides=[16, 8], base_sizes=sizes),
                      featmap_strides=[16, 8], test_cfg=cfg)
    gen = torch.Generator().manual_seed(seed)
    maps = [torch.randn(2, 16, 3, 4, generator=gen) * 1.5, torch.randn(2, 16, 6, 8, generator=gen) * 1.5]
    metas = [dict(img_shape=(48, 64, 3), scale_factor=[0.5, 0.25, 0.5, 0.25]),
             dict(img_shape=(48, 64, 3), scale_factor=[2.0, 2.0, 2.0, 2.0])]
    results = head.predict_by_feat(maps, metas, rescale=True)
    for i, res in enumerate(results):
        ref = slow_predict([m[i:i + 1] for m in maps], [16, 8], sizes, 3, cfg, metas[i]["scale_factor"])
        assert len(res) == len(ref) > 0
        assert res.scores.tolist() == pytest.approx([r[0] for r in ref], rel=1e-5)
        assert res.labels.tolist() == [r[1] for r in ref]
        assert res.boxes.reshape(-1).tolist() == pytest.approx([v for r in ref for v in r[2]], rel=1e-4, abs=1e-3)


def test_predict_gates_on_objectness_before_class_scores():
    head = tiny_head(num_classes=1, nms_pre=1000, min_bbox_size=0, score_thr=0.05, conf_thr=0.005,
                     nms=dict(type="nms", iou_threshold=0.45), max_per_img=100)
    pred = torch.full((1, 6, 2, 2), -20.0)
    pred[0, 2:4] = 0.0                    # boxes of the anchor's size
    pred[0, 5] = 10.0                     # class score ~1 everywhere
    pred[0, 4, 0, 0] = math.log(0.004 / 0.996)   # objectness 0.004 < conf_thr: dropped
    pred[0, 4, 1, 1] = math.log(0.01 / 0.99)     # objectness 0.01: kept, final score 0.01 < score_thr
    res = head.predict_by_feat([pred], [dict(img_shape=(16, 16, 3), scale_factor=[1.0] * 4)])[0]
    # the score threshold applies to the class score alone, the objectness multiplies afterwards
    assert len(res) == 1 and res.scores.item() == pytest.approx(0.01, rel=1e-3)
    # anchor [8, 8, 16, 16] with sigmoid(tx) = sigmoid(ty) ~ 0: the centre moves half a cell up-left
    assert res.boxes[0].tolist() == pytest.approx([4, 4, 12, 12], abs=1e-3)


# -- other configs -----------------------------------------------------------------------------
def test_quickstart_config_anchors_and_channels():
    cfg = load_config("yolov3_r18_quickstart")
    model = build_detector(cfg["model"], class_names=("circle", "square", "triangle", "star"))
    sizes = [w for level in model.bbox_head.prior_generator.base_sizes for w, _ in level]
    assert sorted(sizes) == pytest.approx([10 * 2 ** (i / 2) for i in range(9)])
    assert model.bbox_head.prior_generator.base_sizes[0][-1] == (160.0, 160.0)  # largest on stride 32
    model.eval()
    with torch.no_grad():
        (maps,) = model.bbox_head(model.extract_feat(torch.zeros(1, 3, 64, 96)))
    assert [tuple(m.shape) for m in maps] == [(1, 27, 2, 3), (1, 27, 4, 6), (1, 27, 8, 12)]


def test_paddle_r34_config_builds():
    if not augment_steps_available():
        pytest.skip("detzoo.data.transforms has no Expand/MinIoURandomCrop/PhotoMetricDistortion yet")
    cfg = load_config("yolov3_r34_270e_coco")
    model = build_detector(cfg["model"]).eval()
    with torch.no_grad():
        feats = model.backbone(torch.zeros(1, 3, 64, 64))
    assert [tuple(f.shape[1:]) for f in feats] == [(128, 8, 8), (256, 4, 4), (512, 2, 2)]
    assert model.neck.in_channels == [512, 256, 128]
    assert cfg["runner"]["max_epochs"] == 270


def test_paddle_mobilenet_v1_config_builds():
    if not has_module("detzoo.models.backbones.mobilenet_v1"):
        pytest.skip("detzoo.models.backbones.mobilenet_v1 (written for SSD) is not there yet")
    if not augment_steps_available():
        pytest.skip("detzoo.data.transforms has no Expand/MinIoURandomCrop/PhotoMetricDistortion yet")
    model = build_detector(load_config("yolov3_mobilenet_v1_270e_coco")["model"]).eval()
    with torch.no_grad():
        feats = model.backbone(torch.zeros(1, 3, 64, 64))
    assert [tuple(f.shape[1:]) for f in feats] == [(256, 8, 8), (512, 4, 4), (1024, 2, 2)]


def test_paddle_voc_config_builds():
    import detzoo.data

    if not hasattr(detzoo.data, "VOCDataset"):
        pytest.skip("detzoo.data.VOCDataset is not there yet")
    if not augment_steps_available():
        pytest.skip("detzoo.data.transforms has no Expand/MinIoURandomCrop/PhotoMetricDistortion yet")
    cfg = load_config("yolov3_darknet_voc")
    model = build_detector(cfg["model"])
    assert model.bbox_head.num_classes == 20
    assert model.bbox_head.convs_pred[0].out_channels == 3 * 25
