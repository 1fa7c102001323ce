"""Building blocks shared by backbones, necks and heads."""
from .conv_module import ConvModule, build_activation_layer, build_conv_layer
from .norm import NORM_TYPES, FrozenBatchNorm2d, build_norm_layer, norm_name

__all__ = [
    "ConvModule", "build_activation_layer", "build_conv_layer",
    "NORM_TYPES", "FrozenBatchNorm2d", "build_norm_layer", "norm_name",
]
