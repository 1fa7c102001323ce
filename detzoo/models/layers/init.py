"""Weight-initialisation helpers shared by the heads and backbones."""
import math

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def bias_init_with_prob(prior_prob: float) -> float:
    """The logit whose sigmoid is ``prior_prob`` (focal-loss heads start every class at this
    probability, Lin et al. 2017)."""
    return float(-math.log((1 - prior_prob) / prior_prob))


def kaiming_init_convs_and_norms(module: nn.Module) -> None:
    """mmcv's ``Kaiming(layer='Conv2d')`` + ``Constant(1, layer=['_BatchNorm', 'GroupNorm'])``
    init_cfg, the default of MMDetection's ResNet and ResLayer: every Conv2d normal with fan_out
    and ReLU gain, bias 0; every affine norm weight 1, bias 0. Call under ``torch.no_grad()``."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (_BatchNorm, nn.GroupNorm)) and m.weight is not None:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
