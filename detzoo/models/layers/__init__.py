"""Building blocks shared by backbones, necks and heads."""
from .conv_module import CONV_TYPES, ConvModule, build_activation_layer, build_conv_layer
from .conv_ws import ConvWS2d, standardize_weight
from .norm import NORM_TYPES, FrozenBatchNorm2d, build_norm_layer, norm_name

__all__ = [
    "CONV_TYPES", "ConvModule", "build_activation_layer", "build_conv_layer",
    "ConvWS2d", "standardize_weight",
    "NORM_TYPES", "FrozenBatchNorm2d", "build_norm_layer", "norm_name",
]

from .scale import Scale  # noqa: E402

__all__ += ["Scale"]

from .init import bias_init_with_prob  # noqa: E402

__all__ += ["bias_init_with_prob"]

from .fuse_conv_bn import fuse_conv_bn  # noqa: E402

__all__ += ["fuse_conv_bn"]
