"""Backbones: image -> tuple of multi-scale feature maps."""
from .regnet import RegNet, RegNetBottleneck
from .resnet import BasicBlock, Bottleneck, ResNet
from .resnext import ResNeXt, ResNeXtBottleneck

__all__ = ["BasicBlock", "Bottleneck", "ResNet", "ResNeXt", "ResNeXtBottleneck", "RegNet",
           "RegNetBottleneck"]
