import pytest
import torch
from torch import nn

from detzoo.engine.optim import auto_scale_lr, build_optimizer, clip_gradients
from detzoo.errors import ConfigError


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        self.frozen = nn.Linear(4, 4)
        self.frozen.requires_grad_(False)
        self.dw = nn.Conv2d(4, 4, 3, groups=4)
        self.head = nn.Linear(4, 2)


def _group_of(optimizer, param):
    for group in optimizer.param_groups:
        if any(p is param for p in group["params"]):
            return group
    return None


def test_linear_scaling_rule():
    # 0.02 is for 8 GPUs x 2 images; 1 GPU x 2 images -> 0.02 * 2 / 16
    assert auto_scale_lr(0.02, actual_batch_size=2) == pytest.approx(0.0025)
    assert auto_scale_lr(0.01, actual_batch_size=32, base_batch_size=16) == pytest.approx(0.02)
    with pytest.raises(ConfigError):
        auto_scale_lr(0.02, actual_batch_size=0)


@pytest.mark.parametrize("opt_type", ["SGD", torch.optim.SGD])
def test_only_trainable_params(opt_type):
    net = Net()
    optimizer = build_optimizer(net, dict(type=opt_type, lr=0.02, momentum=0.9, weight_decay=1e-4))
    assert isinstance(optimizer, torch.optim.SGD)
    in_optimizer = {id(p) for g in optimizer.param_groups for p in g["params"]}
    expected = {id(p) for p in net.parameters() if p.requires_grad}
    assert in_optimizer == expected and id(net.frozen.weight) not in in_optimizer
    assert optimizer.param_groups[0]["momentum"] == 0.9


def test_paramwise_cfg_rules():
    net = Net()
    optimizer = build_optimizer(net, dict(
        type="SGD", lr=0.02, momentum=0.9, weight_decay=1e-4,
        paramwise_cfg=dict(bias_lr_mult=2.0, bias_decay_mult=0.0, norm_decay_mult=0.0,
                           dwconv_decay_mult=0.5, custom_keys={"head": dict(lr_mult=0.1, decay_mult=3.0)})))
    conv, bn = net.backbone[0], net.backbone[1]
    expected = {  # (lr, weight_decay) worked out from mmcv's DefaultOptimizerConstructor rules
        conv.weight: (0.02, 1e-4),
        conv.bias: (0.04, 0.0),            # bias: lr x2, no decay
        bn.weight: (0.02, 0.0),            # norm: no decay, lr unchanged
        bn.bias: (0.02, 0.0),              # norm bias: not a "bias" rule, still norm decay
        net.dw.weight: (0.02, 0.5e-4),     # depth-wise conv
        net.dw.bias: (0.04, 0.5e-4),       # dw bias: bias lr, dw decay wins over bias decay
        net.head.weight: (0.002, 3e-4),    # custom key overrides every other rule
        net.head.bias: (0.002, 3e-4),
    }
    for param, (lr, wd) in expected.items():
        group = _group_of(optimizer, param)
        assert group["lr"] == pytest.approx(lr) and group["weight_decay"] == pytest.approx(wd)
    assert _group_of(optimizer, net.frozen.weight) is None


def test_bad_optimizer_config():
    with pytest.raises(ConfigError, match="SGDD"):
        build_optimizer(Net(), dict(type="SGDD", lr=0.1))
    with pytest.raises(ConfigError, match="lr"):
        build_optimizer(Net(), dict(type="SGD"))
    with pytest.raises(ConfigError, match="bias_lr_mul"):
        build_optimizer(Net(), dict(type="SGD", lr=0.1, paramwise_cfg=dict(bias_lr_mul=2)))


def test_grad_clip_limits_total_norm():
    params = [nn.Parameter(torch.zeros(3)), nn.Parameter(torch.zeros(4)), nn.Parameter(torch.zeros(2))]
    params[0].grad = torch.tensor([30.0, 0.0, 40.0])   # norm 50
    params[1].grad = torch.full((4,), 60.0)             # norm 120 -> total sqrt(50^2 + 120^2) = 130
    # params[2] has no gradient and is skipped
    norm = clip_gradients(params, dict(max_norm=13.0, norm_type=2))
    assert float(norm) == pytest.approx(130.0)
    clipped = torch.cat([params[0].grad, params[1].grad]).norm()
    assert float(clipped) == pytest.approx(13.0, rel=1e-5)
    assert clip_gradients(params, None) is None
