"""RetinaNet: checkpoint layout and strict loading against MMDetection's record, anchors against a
hand computation, targets of a hand-worked case (0.5 / 0.4 / low-quality matches, padding) and
the focal + L1 losses normalised by the number of positive anchors."""
import json
import math

import pytest
import torch

from detzoo.config import instantiate, load_config
from detzoo.engine.checkpoint import load_model_weights
from detzoo.models.builder import build_detector
from detzoo.models.dense_heads import RetinaHead
from detzoo.models.losses import FocalLoss, L1Loss
from detzoo.models.task_modules import AnchorGenerator, DeltaXYWHBBoxCoder

from shared_paths import MMDET_LAYOUTS as LAYOUTS

NAME = "retinanet_r50_fpn_1x_coco"


def layout():
    path = LAYOUTS / f"{NAME}.json"
    if not path.is_file():
        pytest.fail(f"checkpoint layout {path} is missing (shared/ must sit beside the checkout)")
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def retinanet():
    torch.manual_seed(0)
    return build_detector(load_config(NAME)["model"])


def test_state_dict_matches_mmdetection_layout(retinanet):
    ref = {k: tuple(shape) for k, shape in layout()["layout"]}
    mine = {k: tuple(v.shape) for k, v in retinanet.state_dict().items()}
    assert sorted(mine) == sorted(ref)
    assert mine == ref


def test_layout_state_dict_loads_strictly_and_is_used(retinanet, tmp_path):
    gen = torch.Generator().manual_seed(0)
    state = {}
    for key, shape in layout()["layout"]:
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=gen) + 0.5
        else:
            state[key] = torch.randn(shape, generator=gen) * 0.01
    path = tmp_path / "mmdet_retinanet.pth"
    torch.save({"meta": {"CLASSES": [f"c{i}" for i in range(80)]}, "state_dict": state}, path)
    load_model_weights(retinanet, str(path), strict=True)
    for key, value in retinanet.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_train_and_test_cfg_match_reference_record():
    info = layout()
    cfg = load_config(NAME).model
    test_ref, train_ref = info["test_cfg"], info["train_cfg"]
    for key in ("nms_pre", "min_bbox_size", "score_thr", "max_per_img"):
        assert cfg.test_cfg[key] == test_ref[key], key
    assert cfg.test_cfg.nms.iou_threshold == test_ref["nms"]["iou_threshold"]
    for key in ("pos_iou_thr", "neg_iou_thr", "min_pos_iou", "ignore_iof_thr"):
        assert cfg.train_cfg.assigner[key] == train_ref["assigner"][key], key
    assert cfg.train_cfg.sampler["type"].__name__ == train_ref["sampler"]["type"] == "PseudoSampler"
    assert cfg.train_cfg.allowed_border == train_ref["allowed_border"]
    assert cfg.train_cfg.pos_weight == train_ref["pos_weight"]
    head_ref = info["model_cfg"]["bbox_head"]
    assert cfg.bbox_head.loss_cls.gamma == head_ref["loss_cls"]["gamma"]
    assert cfg.bbox_head.loss_cls.alpha == head_ref["loss_cls"]["alpha"]
    assert cfg.neck.start_level == 1 and cfg.neck.add_extra_convs == "on_input"


def test_anchors_are_octave_scales_of_each_stride(retinanet):
    """Level l, cell (x, y), anchor (ratio r outer, octave i inner): centre (x, y) * stride,
    size 4 * 2^(i/3) * stride, w = size / sqrt(r), h = size * sqrt(r)."""
    sizes = [(2, 3), (2, 2), (1, 2), (1, 1), (1, 1)]
    priors = retinanet.bbox_head.priors_of(sizes, "cpu")
    for level, (stride, (fh, fw)) in enumerate(zip([8, 16, 32, 64, 128], sizes)):
        hand = []
        for y in range(fh):
            for x in range(fw):
                for r in (0.5, 1.0, 2.0):
                    for i in range(3):
                        size = 4 * 2 ** (i / 3) * stride
                        w, h = size / math.sqrt(r), size * math.sqrt(r)
                        hand.append([x * stride - w / 2, y * stride - h / 2, x * stride + w / 2, y * stride + h / 2])
        assert priors[level].shape == (fh * fw * 9, 4)
        assert priors[level].flatten().tolist() == pytest.approx([v for b in hand for v in b], rel=1e-6, abs=1e-4)


def test_pyramid_is_p3_to_p7_and_p7_sees_p6_without_relu(retinanet):
    img = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    retinanet.eval()
    with torch.no_grad():
        feats = retinanet.extract_feat(img)
        assert [tuple(f.shape[-2:]) for f in feats] == [(8, 12), (4, 6), (2, 3), (1, 2), (1, 1)]
        # mmdet's RetinaNet config leaves relu_before_extra_convs False
        assert torch.allclose(feats[4], retinanet.neck.fpn_convs[4](feats[3]), atol=1e-6)


def test_classifier_starts_at_the_prior_probability():
    torch.manual_seed(0)
    head = instantiate(load_config(NAME).model.bbox_head)  # fresh: the fixture's weights get loaded
    assert torch.allclose(head.retina_cls.bias.sigmoid(), torch.full((720,), 0.01))
    for conv in (head.cls_convs[0].conv, head.reg_convs[3].conv, head.retina_reg):
        assert conv.weight.std().item() == pytest.approx(0.01, rel=0.05)
        assert conv.bias.abs().max().item() == 0


# --- a hand-worked assignment ----------------------------------------------------------------
# One level, stride 16, one 32x32 anchor per cell centred on (16x, 16y): anchor index y * 5 + x.
# gt A = [4, 0, 36, 32] (class 2): anchor (1,1) = [0, 0, 32, 32] has IoU 896/1152 = 0.78 -> positive;
#   anchor (2,1) = [16, 0, 48, 32] has IoU 640/1408 = 0.45 -> ignored (between 0.4 and 0.5);
#   the others overlap at most 0.28 -> negative.
# gt B = [60, 60, 70, 70] (class 0): its best anchor (4,4) = [48, 48, 80, 80] has IoU 100/1024
#   = 0.098 < 0.4, positive only through the low-quality match (min_pos_iou 0).
# Image 2 holds gt A only and is padded to 48 rows: anchor rows 3 and 4 lie in the batch padding.
GT_A, GT_B = [4.0, 0.0, 36.0, 32.0], [60.0, 60.0, 70.0, 70.0]


def small_head():
    train_cfg = load_config(NAME).model.train_cfg
    return RetinaHead(num_classes=3, in_channels=8, stacked_convs=1, feat_channels=8,
                      anchor_generator=AnchorGenerator(strides=[16], ratios=[1.0], scales=[2]),
                      bbox_coder=DeltaXYWHBBoxCoder(), loss_cls=FocalLoss(gamma=2.0, alpha=0.25),
                      loss_bbox=L1Loss(), train_cfg=train_cfg)


def hand_targets():
    """Expected (labels, label_weights, {anchor: deltas}) of both images."""
    bg = 3
    labels = [[bg] * 25, [bg] * 25]
    weights = [[1.0] * 25, [1.0] * 25]
    deltas = [{}, {}]
    for img in (0, 1):
        labels[img][6] = 2
        weights[img][7] = 0.0
        deltas[img][6] = [4 / 32, 0.0, 0.0, 0.0]  # centre 20 vs 16, same size
    labels[0][24] = 0
    deltas[0][24] = [1 / 32, 1 / 32, math.log(10 / 32), math.log(10 / 32)]
    for idx in range(15, 25):  # rows 3, 4 of image 2: padding
        weights[1][idx] = 0.0
    return labels, weights, deltas


def inputs():
    metas = [dict(img_shape=(80, 80, 3), pad_shape=(80, 80, 3)), dict(img_shape=(40, 80, 3), pad_shape=(48, 80, 3))]
    gt_bboxes = [torch.tensor([GT_A, GT_B]), torch.tensor([GT_A])]
    gt_labels = [torch.tensor([2, 0]), torch.tensor([2])]
    return metas, gt_bboxes, gt_labels


def test_targets_of_hand_worked_case():
    head = small_head()
    metas, gt_bboxes, gt_labels = inputs()
    anchors = torch.cat(head.priors_of([(5, 5)], "cpu"))
    labels, label_weights, bbox_targets, bbox_weights, num_pos, num_neg = head.get_targets(
        anchors, metas, gt_bboxes, gt_labels, None, [(5, 5)])
    exp_labels, exp_weights, exp_deltas = hand_targets()
    assert labels.tolist() == exp_labels
    assert label_weights.tolist() == exp_weights
    assert num_pos == 3
    assert num_neg == 22 + 13  # every other valid anchor that is not ignored
    for img in (0, 1):
        for idx in range(25):
            if idx in exp_deltas[img]:
                assert bbox_targets[img, idx].tolist() == pytest.approx(exp_deltas[img][idx], abs=1e-6)
                assert bbox_weights[img, idx].tolist() == [1.0] * 4
            else:
                assert bbox_weights[img, idx].tolist() == [0.0] * 4


def test_losses_are_normalised_by_the_number_of_positives():
    head = small_head()
    metas, gt_bboxes, gt_labels = inputs()
    gen = torch.Generator().manual_seed(5)
    cls_scores = [torch.randn(2, 3, 5, 5, generator=gen)]
    bbox_preds = [torch.randn(2, 4, 5, 5, generator=gen) * 0.3]
    losses = head.loss(cls_scores, bbox_preds, gt_bboxes, gt_labels, metas)

    exp_labels, exp_weights, exp_deltas = hand_targets()
    focal_sum, l1_sum = 0.0, 0.0
    for img in (0, 1):
        for idx in range(25):
            y, x = divmod(idx, 5)
            for c in range(3):
                p = torch.sigmoid(cls_scores[0][img, c, y, x].double()).item()
                if exp_labels[img][idx] == c:
                    term = -0.25 * (1 - p) ** 2 * math.log(p)
                else:
                    term = -0.75 * p ** 2 * math.log(1 - p)
                focal_sum += exp_weights[img][idx] * term
            if idx in exp_deltas[img]:
                l1_sum += sum(abs(bbox_preds[0][img, k, y, x].item() - exp_deltas[img][idx][k]) for k in range(4))
    num_pos = 3
    assert losses["loss_cls"].item() == pytest.approx(focal_sum / num_pos, rel=1e-5)
    assert losses["loss_bbox"].item() == pytest.approx(l1_sum / num_pos, rel=1e-5)


def test_image_without_positives_counts_one_in_the_divisor():
    """mmdet 3.x SamplingResult: num_pos = max(len(pos_inds), 1) per image, so a batch of the
    hand-worked image 1 (2 positives) and an empty image divides by 2 + 1."""
    head = small_head()
    metas = [dict(img_shape=(80, 80, 3), pad_shape=(80, 80, 3))] * 2
    cls = torch.full((2, 3, 5, 5), -2.0)
    reg = torch.zeros(2, 4, 5, 5)
    losses = head.loss([cls], [reg], [torch.tensor([GT_A, GT_B]), torch.zeros(0, 4)],
                       [torch.tensor([2, 0]), torch.zeros(0, dtype=torch.long)], metas)
    p = 1 / (1 + math.exp(2.0))
    neg, pos = -0.75 * p ** 2 * math.log(1 - p), -0.25 * (1 - p) ** 2 * math.log(p)
    # image 1: 22 negative anchors, 2 positives (1 positive and 2 negative classes each),
    # 1 ignored; image 2: 25 negative anchors
    focal = (22 + 25) * 3 * neg + 2 * (pos + 2 * neg)
    assert losses["loss_cls"].item() == pytest.approx(focal / 3, rel=1e-5)
    l1 = sum(abs(v) for v in (4 / 32, 0, 0, 0, 1 / 32, 1 / 32, math.log(10 / 32), math.log(10 / 32)))
    assert losses["loss_bbox"].item() == pytest.approx(l1 / 3, rel=1e-5)
