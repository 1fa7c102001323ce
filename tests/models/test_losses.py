"""Losses against hand-computed values."""
import math

import pytest
import torch

from detzoo.models.losses import CrossEntropyLoss, L1Loss, SmoothL1Loss, accuracy


def test_softmax_ce_with_avg_factor():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    labels = torch.tensor([0, 2])
    per = [-math.log(math.exp(2) / (math.exp(2) + 2)), -math.log(1 / (math.e + 2))]
    loss = CrossEntropyLoss()(logits, labels, torch.ones(2), avg_factor=4)
    assert loss.item() == pytest.approx(sum(per) / 4, rel=1e-5)


def test_sigmoid_ce_background_is_all_zero_target():
    logits = torch.tensor([[0.5], [-1.0]])
    labels = torch.tensor([0, 1])  # 1 == num_classes -> background
    bce = lambda x, t: -(t * math.log(1 / (1 + math.exp(-x))) + (1 - t) * math.log(1 - 1 / (1 + math.exp(-x))))
    expect = (bce(0.5, 1) + bce(-1.0, 0)) / 2
    loss = CrossEntropyLoss(use_sigmoid=True)(logits, labels, torch.ones(2), avg_factor=2)
    assert loss.item() == pytest.approx(expect, rel=1e-5)


def test_l1_and_smooth_l1():
    pred = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    tgt = torch.tensor([[1.0, 1.0, 0.0, 3.5]])
    w = torch.tensor([[1.0, 1.0, 0.0, 1.0]])
    assert L1Loss()(pred, tgt, w, avg_factor=2).item() == pytest.approx((1 + 0 + 0.5) / 2)
    s = SmoothL1Loss(beta=1.0)(pred, tgt, reduction_override="sum")
    assert s.item() == pytest.approx(0.5 + 0 + 1.5 + 0.125)


def test_accuracy():
    assert accuracy(torch.tensor([[1.0, 0], [0, 1], [1, 0]]), torch.tensor([0, 0, 0])).item() == pytest.approx(200 / 3)
