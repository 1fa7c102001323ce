"""IoU/GIoU losses against hand-worked boxes; Quality and Distribution Focal Loss against loop
implementations of the GFL paper's definitions (Li et al., 2020, eqs. 5 and 6); the Integral
(expectation) decode of GFL's box distributions against hand computation."""
import math

import pytest
import torch

from detzoo.models.dense_heads.gfl_head import Integral
from detzoo.models.losses import DistributionFocalLoss, GIoULoss, IoULoss, QualityFocalLoss


def boxes(*rows):
    return torch.tensor(rows, dtype=torch.float64)


# pred (0,0,2,2) vs target (1,1,3,3): intersection 1, union 7, enclosing box 3x3 = 9
# pred (0,0,1,1) vs target (2,2,3,3): disjoint, union 2, enclosing 9
PRED = boxes([0, 0, 2, 2], [0, 0, 1, 1], [5, 5, 9, 8])
TARGET = boxes([1, 1, 3, 3], [2, 2, 3, 3], [5, 5, 9, 8])
IOU = [1 / 7, 0.0, 1.0]
GIOU = [1 / 7 - 2 / 9, 0.0 - 7 / 9, 1.0]


@pytest.mark.parametrize("mode,per_box", [
    ("log", [-math.log(max(v, 1e-6)) for v in IOU]),
    ("linear", [1 - v for v in IOU]),
    ("square", [1 - v * v for v in IOU]),
])
def test_iou_loss_modes_match_hand_values(mode, per_box):
    loss = IoULoss(mode=mode, reduction="none")(PRED, TARGET)
    assert torch.allclose(loss, torch.tensor(per_box, dtype=torch.float64), atol=1e-9)


def test_iou_loss_weight_avg_factor_and_loss_weight():
    w = torch.tensor([0.5, 0.25, 2.0], dtype=torch.float64)
    expected = 3.0 * sum(wi * -math.log(max(v, 1e-6)) for wi, v in zip(w.tolist(), IOU)) / 4.0
    got = IoULoss(loss_weight=3.0)(PRED, TARGET, weight=w, avg_factor=4.0)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    # an [N, 4] weight is averaged over its last dim, as the reference does
    got4 = IoULoss(loss_weight=3.0)(PRED, TARGET, weight=w[:, None].expand(-1, 4), avg_factor=4.0)
    assert got4.item() == pytest.approx(expected, rel=1e-6)
    # plain mean without avg_factor
    assert IoULoss(mode="linear")(PRED, TARGET).item() == pytest.approx(sum(1 - v for v in IOU) / 3)


def test_giou_loss_matches_hand_values():
    loss = GIoULoss(reduction="none")(PRED, TARGET)
    assert torch.allclose(loss, torch.tensor([1 - g for g in GIOU], dtype=torch.float64), atol=1e-9)
    w = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    got = GIoULoss(loss_weight=2.0)(PRED, TARGET, weight=w, avg_factor=1.0)
    assert got.item() == pytest.approx(2.0 * sum(wi * (1 - g) for wi, g in zip(w.tolist(), GIOU)), rel=1e-6)


def test_all_zero_weights_give_zero_with_a_connected_graph():
    pred = PRED.clone().requires_grad_(True)
    for loss_fn in (IoULoss(), GIoULoss()):
        loss = loss_fn(pred, TARGET, weight=torch.zeros(3, dtype=torch.float64), avg_factor=0.0)
        assert loss.item() == 0.0
        loss.backward()
        assert pred.grad is not None and torch.count_nonzero(pred.grad) == 0


def _sigmoid(x):
    return 1 / (1 + math.exp(-x))


def _bce(x, y):
    p = _sigmoid(x)
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def reference_qfl(logits, labels, scores, beta):
    """Per sample: sum over classes of |y - sigma|^beta * BCE(sigma, y), with y the IoU score on
    the sample's own class and 0 on every other class (background: 0 everywhere)."""
    out = []
    for row, label, score in zip(logits.tolist(), labels.tolist(), scores.tolist()):
        total = 0.0
        for c, x in enumerate(row):
            y = score if c == label else 0.0
            total += abs(y - _sigmoid(x)) ** beta * _bce(x, y)
        out.append(total)
    return out


def test_quality_focal_loss_matches_paper_definition():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(7, 4, generator=gen, dtype=torch.float64) * 2
    labels = torch.tensor([0, 3, 4, 1, 4, 2, 0])  # 4 = background
    scores = torch.rand(7, generator=gen, dtype=torch.float64)
    weight = torch.rand(7, generator=gen, dtype=torch.float64)
    for beta in (2.0, 1.0):
        ref = reference_qfl(logits, labels, scores, beta)
        loss = QualityFocalLoss(beta=beta, reduction="none")(logits, (labels, scores))
        assert torch.allclose(loss, torch.tensor(ref, dtype=torch.float64), atol=1e-12)
        got = QualityFocalLoss(beta=beta, loss_weight=0.5)(logits, (labels, scores), weight=weight, avg_factor=3.0)
        assert got.item() == pytest.approx(0.5 * sum(w * r for w, r in zip(weight.tolist(), ref)) / 3.0, rel=1e-6)  # avg_factor gets float32 eps added


def reference_dfl(logits, targets):
    """-( (y_{i+1} - y) log S_i + (y - y_i) log S_{i+1} ), y_i <= y < y_{i+1} neighbouring bins."""
    out = []
    for row, y in zip(logits.tolist(), targets.tolist()):
        norm = math.log(sum(math.exp(v) for v in row))
        left = math.floor(y)
        out.append(-((left + 1 - y) * (row[left] - norm) + (y - left) * (row[left + 1] - norm)))
    return out


def test_distribution_focal_loss_matches_paper_definition():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(9, 17, generator=gen, dtype=torch.float64)
    targets = torch.tensor([0.0, 0.3, 1.0, 4.75, 8.5, 12.01, 15.9, 15.0, 7.999], dtype=torch.float64)
    ref = reference_dfl(logits, targets)
    assert torch.allclose(DistributionFocalLoss(reduction="none")(logits, targets),
                          torch.tensor(ref, dtype=torch.float64), atol=1e-12)
    weight = torch.rand(9, generator=gen, dtype=torch.float64)
    got = DistributionFocalLoss(loss_weight=0.25)(logits, targets, weight=weight, avg_factor=4.0)
    assert got.item() == pytest.approx(0.25 * sum(w * r for w, r in zip(weight.tolist(), ref)) / 4.0, rel=1e-6)  # avg_factor gets float32 eps added


def test_distribution_focal_loss_is_smallest_at_the_two_bin_distribution():
    """The paper's argument: DFL is minimised by mass (y_{i+1} - y, y - y_i) on the two bins,
    whose expectation is exactly y."""
    y = torch.tensor([4.3], dtype=torch.float64)
    best = torch.full((1, 17), -30.0, dtype=torch.float64)
    best[0, 4], best[0, 5] = math.log(0.7), math.log(0.3)
    other = best.clone()
    other[0, 4], other[0, 5] = math.log(0.6), math.log(0.4)
    dfl = DistributionFocalLoss(reduction="none")
    assert dfl(best, y).item() < dfl(other, y).item()
    assert Integral(16)(best.repeat(1, 4).float())[0, 0].item() == pytest.approx(4.3, abs=1e-5)


def test_integral_is_the_expected_bin():
    neg = -1e4
    left = [neg] * 17
    left[3], left[4] = math.log(0.25), math.log(0.75)  # expectation 3 * 0.25 + 4 * 0.75 = 3.75
    top = [0.0] * 17  # uniform: (0 + ... + 16) / 17 = 8
    right = [neg] * 17
    right[1] = 0.0  # all mass on bin 1
    bottom = [neg] * 17
    bottom[16] = 0.0  # all mass on the last bin
    logits = torch.tensor([left + top + right + bottom])
    assert Integral(16)(logits)[0].tolist() == pytest.approx([3.75, 8.0, 1.0, 16.0], abs=1e-5)
    assert Integral(16).project.tolist() == [float(i) for i in range(17)]
