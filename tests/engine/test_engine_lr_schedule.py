import math

import pytest
import torch

from detzoo.engine.lr_schedule import (CosineLrSchedule, StepLrSchedule, build_lr_schedule)
from detzoo.errors import ConfigError

# MMDetection's 1x schedule: lr 0.02, linear warmup 500 iters from 0.001x, x0.1 after epochs 8, 11.
ONE_X = dict(step=[8, 11], warmup="linear", warmup_iters=500, warmup_ratio=0.001)


@pytest.mark.parametrize("epoch, iteration, expected", [
    (0, 0, 0.02 * 0.001),                       # warmup start: warmup_ratio * lr
    (0, 250, 0.02 * (1 - 0.5 * 0.999)),          # halfway: 0.01001
    (0, 499, 0.02 * (1 - (1 / 500) * 0.999)),     # last warmup iteration
    (0, 500, 0.02),                              # warmup over
    (7, 7999, 0.02),                             # last epoch before the first step
    (8, 8000, 0.002),                            # epochs 8..10 (9th..11th): 0.1x
    (10, 10999, 0.002),
    (11, 11000, 0.0002),                         # epoch 11 (12th): 0.01x
])
def test_step_schedule_hand_table(epoch, iteration, expected):
    schedule = StepLrSchedule(0.02, **ONE_X)
    assert schedule.get_lr(epoch, iteration) == pytest.approx(expected, rel=1e-12)


def test_warmup_multiplies_the_stepped_lr():
    # mmcv applies warmup on top of the regular (already stepped) lr:
    # epoch 1 is after step 1 -> 0.002; iteration 150 of 500 -> 1 - 0.7 * 0.999 = 0.3007.
    schedule = StepLrSchedule(0.02, step=[1], warmup="linear", warmup_iters=500, warmup_ratio=0.001)
    assert schedule.get_lr(1, 150) == pytest.approx(0.002 * 0.3007, rel=1e-12)


def test_constant_and_exp_warmup():
    constant = StepLrSchedule(0.02, step=[8], warmup="constant", warmup_iters=500, warmup_ratio=0.001)
    assert constant.get_lr(0, 499) == pytest.approx(2e-5)
    assert constant.get_lr(0, 500) == pytest.approx(0.02)
    exp = StepLrSchedule(0.02, step=[8], warmup="exp", warmup_iters=500, warmup_ratio=0.001)
    assert exp.get_lr(0, 0) == pytest.approx(2e-5)
    assert exp.get_lr(0, 250) == pytest.approx(0.02 * math.sqrt(0.001))  # 0.001 ** 0.5


def test_int_step_and_by_iteration():
    every_two = StepLrSchedule(1.0, step=2, gamma=0.5)
    assert [every_two.get_lr(e, 0) for e in range(5)] == [1.0, 1.0, 0.5, 0.5, 0.25]
    by_iter = StepLrSchedule(1.0, step=[10, 20], by_epoch=False, epoch_len=7)
    assert [by_iter.get_lr(i // 7, i) for i in (9, 10, 19, 20)] == pytest.approx([1.0, 0.1, 0.1, 0.01])


def test_warmup_by_epoch_counts_epochs():
    schedule = StepLrSchedule(0.1, step=[5], warmup="linear", warmup_iters=2, warmup_ratio=0.1,
                              warmup_by_epoch=True, epoch_len=10)
    assert schedule.warmup_iters == 20
    assert schedule.get_lr(1, 10) == pytest.approx(0.1 * (1 - 0.5 * 0.9))
    assert schedule.get_lr(2, 20) == pytest.approx(0.1)


def test_matches_torch_multistep_and_linear_warmup():
    """mmcv's warmup factor r + (1 - r) i / T is torch's LinearLR; steps are MultiStepLR."""
    base, epoch_len, warmup_iters, epochs = 0.02, 20, 50, 5
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=base)
    linear = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.001, end_factor=1.0,
                                               total_iters=warmup_iters)
    multistep = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[1, 3], gamma=0.1)
    ours = StepLrSchedule(base, step=[1, 3], warmup="linear", warmup_iters=warmup_iters, warmup_ratio=0.001)
    for epoch in range(epochs):
        for inner in range(epoch_len):
            iteration = epoch * epoch_len + inner
            assert ours.get_lr(epoch, iteration) == pytest.approx(optimizer.param_groups[0]["lr"], rel=1e-9)
            optimizer.step()  # no gradient: a no-op that keeps torch's call-order check quiet
            linear.step()
        multistep.step()


def test_cosine_matches_torch_cosine_annealing():
    base, max_epochs = 0.01, 12
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=base)
    torch_cos = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max_epochs, eta_min=base * 0.01)
    ours = CosineLrSchedule(base, min_lr_ratio=0.01, max_epochs=max_epochs)
    for epoch in range(max_epochs):
        assert ours.get_lr(epoch, epoch * 100) == pytest.approx(optimizer.param_groups[0]["lr"], rel=1e-9)
        optimizer.step()
        torch_cos.step()
    # hand value at half time: target + (base - target) / 2
    assert ours.get_lr(6, 0) == pytest.approx(0.0001 + 0.5 * 0.0099)


def test_apply_uses_each_groups_initial_lr():
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([{"params": [a], "lr": 0.02}, {"params": [b], "lr": 0.002}], lr=0.02)
    schedule = StepLrSchedule(0.02, step=[1])
    assert schedule.apply(optimizer, 0, 0) == pytest.approx([0.02, 0.002])
    assert schedule.apply(optimizer, 1, 10) == pytest.approx([0.002, 0.0002])
    assert [g["initial_lr"] for g in optimizer.param_groups] == [0.02, 0.002]


def test_state_dict_round_trip():
    schedule = StepLrSchedule(0.02, **ONE_X)
    other = StepLrSchedule(0.1, step=[3])
    other.load_state_dict(schedule.state_dict())
    for epoch, iteration in [(0, 0), (0, 300), (9, 9000), (11, 11111)]:
        assert other.get_lr(epoch, iteration) == schedule.get_lr(epoch, iteration)
    with pytest.raises(ConfigError, match="policy"):
        CosineLrSchedule(0.02, min_lr=0.0, max_epochs=12).load_state_dict(schedule.state_dict())


def test_build_from_mmdet_config():
    schedule = build_lr_schedule(dict(policy="step", **ONE_X), 0.02, max_epochs=12, epoch_len=100)
    assert isinstance(schedule, StepLrSchedule) and schedule.step == [8, 11]
    cosine = build_lr_schedule(dict(policy="CosineAnnealing", min_lr_ratio=1e-3), 0.02, max_epochs=12)
    assert isinstance(cosine, CosineLrSchedule)
    assert build_lr_schedule(None, 0.02).get_lr(5, 500) == 0.02
    with pytest.raises(ConfigError, match="'poly'"):
        build_lr_schedule(dict(policy="poly"), 0.02)
    with pytest.raises(ConfigError, match="warmup"):
        build_lr_schedule(dict(policy="step", step=[8], warmup="cubic", warmup_iters=5), 0.02)
    with pytest.raises(ConfigError, match="stepz"):
        build_lr_schedule(dict(policy="step", stepz=[8]), 0.02)
