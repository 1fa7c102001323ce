"""FocalLoss against the formula of Lin et al. (2017) written out element by element in float64:
FL = -alpha (1 - p)^gamma log(p) for the target class, -(1 - alpha) p^gamma log(1 - p) for the
others; background rows (label C) have no target class."""
import math

import pytest
import torch

from detzoo.errors import ConfigError
from detzoo.models.losses import FocalLoss


def reference_focal(logits, labels, gamma=2.0, alpha=0.25, weight=None):
    """Per-element losses [N][C] as float64 Python numbers, optionally times weight[i] (or [i][c])."""
    out = []
    for i, row in enumerate(logits.double().tolist()):
        losses = []
        for c, x in enumerate(row):
            p = 1.0 / (1.0 + math.exp(-x))
            if labels[i] == c:
                value = -alpha * (1 - p) ** gamma * math.log(p)
            else:
                value = -(1 - alpha) * p ** gamma * math.log(1 - p)
            if weight is not None:
                w = weight[i] if not isinstance(weight[i], list) else weight[i][c]
                value *= w
            losses.append(value)
        out.append(losses)
    return out


def total(values):
    return sum(sum(row) for row in values)


@pytest.fixture
def case():
    gen = torch.Generator().manual_seed(0)
    num, classes = 12, 5
    logits = torch.randn(num, classes, generator=gen) * 3
    labels = torch.randint(0, classes + 1, (num,), generator=gen)
    labels[:3] = classes  # background rows
    labels[3] = 2
    weight = torch.rand(num, generator=gen)
    weight[5] = 0.0
    return logits, labels, weight


def test_mean_with_weights_and_avg_factor(case):
    logits, labels, weight = case
    loss = FocalLoss(gamma=2.0, alpha=0.25, loss_weight=1.5)(logits, labels, weight, avg_factor=4)
    ref = total(reference_focal(logits, labels.tolist(), weight=weight.double().tolist()))
    assert loss.item() == pytest.approx(1.5 * ref / (4 + torch.finfo(torch.float32).eps), rel=1e-5)


def test_float64_matches_closely_and_other_gamma_alpha(case):
    logits, labels, _ = case
    loss = FocalLoss(gamma=1.5, alpha=0.6, reduction="sum")(logits.double(), labels)
    ref = total(reference_focal(logits, labels.tolist(), gamma=1.5, alpha=0.6))
    assert loss.item() == pytest.approx(ref, rel=1e-12)


def test_plain_mean_divides_by_elements_and_none_keeps_them(case):
    logits, labels, weight = case
    ref = reference_focal(logits, labels.tolist())
    mean = FocalLoss()(logits, labels)
    assert mean.item() == pytest.approx(total(ref) / logits.numel(), rel=1e-5)
    per_element = FocalLoss(reduction="none")(logits, labels, weight)
    ref_w = reference_focal(logits, labels.tolist(), weight=weight.double().tolist())
    assert per_element.shape == logits.shape
    assert per_element.double().flatten().tolist() == pytest.approx([v for r in ref_w for v in r], rel=1e-5,
                                                                     abs=1e-9)


def test_background_rows_only_pay_for_false_positives():
    logits = torch.tensor([[2.0, -1.0, 0.5], [2.0, -1.0, 0.5]])
    loss = FocalLoss(reduction="none")(logits, torch.tensor([3, 0]))
    # background row: every class is a negative; row 1: class 0 is the positive
    p = torch.sigmoid(logits[0].double())
    neg = -(0.75) * p ** 2 * torch.log(1 - p)
    assert loss[0].double().tolist() == pytest.approx(neg.tolist(), rel=1e-5)
    pos0 = -0.25 * (1 - p[0]) ** 2 * torch.log(p[0])
    assert loss[1, 0].item() == pytest.approx(pos0.item(), rel=1e-5)
    assert loss[1, 1:].double().tolist() == pytest.approx(neg[1:].tolist(), rel=1e-5)


def test_onehot_targets_and_flattened_class_weights(case):
    logits, labels, _ = case
    classes = logits.shape[1]
    onehot = torch.zeros_like(logits)
    fg = labels < classes
    onehot[fg.nonzero()[:, 0], labels[fg]] = 1
    class_weight = torch.rand(logits.shape, generator=torch.Generator().manual_seed(3))
    loss = FocalLoss(reduction="sum")(logits, onehot, class_weight.flatten())
    ref = total(reference_focal(logits, labels.tolist(), weight=class_weight.double().tolist()))
    assert loss.item() == pytest.approx(ref, rel=1e-5)


def test_activated_takes_probabilities(case):
    logits, labels, weight = case
    loss = FocalLoss(activated=True)(logits.sigmoid().double(), labels, weight.double(), avg_factor=7)
    ref = total(reference_focal(logits, labels.tolist(), weight=weight.double().tolist()))
    assert loss.item() == pytest.approx(ref / (7 + torch.finfo(torch.float32).eps), rel=1e-6)


def test_gradient_matches_closed_form():
    # d/dx of the positive term: alpha (1-p)^g (g p log p - (1 - p)); of a negative term:
    # (1-alpha) p^g (p - g (1 - p) log(1 - p))  (derived from FL with dp/dx = p(1-p))
    logits = torch.tensor([[0.3, -1.2]], dtype=torch.float64, requires_grad=True)
    FocalLoss(reduction="sum")(logits, torch.tensor([0])).backward()
    g, a = 2.0, 0.25
    p0, p1 = (1 / (1 + math.exp(-v)) for v in (0.3, -1.2))
    d_pos = a * (1 - p0) ** g * (g * p0 * math.log(p0) - (1 - p0))
    d_neg = (1 - a) * p1 ** g * (p1 - g * (1 - p1) * math.log(1 - p1))
    assert logits.grad[0].tolist() == pytest.approx([d_pos, d_neg], rel=1e-9)


def test_softmax_form_is_refused():
    with pytest.raises(ConfigError, match="use_sigmoid"):
        FocalLoss(use_sigmoid=False)
