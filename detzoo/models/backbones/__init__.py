"""Backbones: image -> tuple of multi-scale feature maps."""
from .resnet import BasicBlock, Bottleneck, ResNet

__all__ = ["BasicBlock", "Bottleneck", "ResNet"]
