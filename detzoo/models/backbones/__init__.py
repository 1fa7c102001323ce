"""Backbones: image -> tuple of multi-scale feature maps."""
from .darknet import Darknet
from .mobilenet_v1 import MobileNetV1
from .regnet import RegNet, RegNetBottleneck
from .resnet import BasicBlock, Bottleneck, ResNet
from .resnext import ResNeXt, ResNeXtBottleneck
from .senet import SELayer, SENet, SEResNeXtBottleneck
from .ssd_vgg import SSDVGG

__all__ = ["BasicBlock", "Bottleneck", "Darknet", "MobileNetV1", "ResNet", "ResNeXt", "ResNeXtBottleneck",
           "RegNet", "RegNetBottleneck", "SSDVGG", "SELayer", "SENet", "SEResNeXtBottleneck"]
