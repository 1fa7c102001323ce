"""Input normalisation of each backbone-weight family (MMDetection's ``img_norm_cfg``).

Values are in 0-255 pixel units and apply to the image *after* the optional BGR->RGB swap:
``out = ((img[..., ::-1] if to_rgb else img) - mean) / std`` (see ``transforms.Normalize``).
Images are decoded as BGR, so ``to_rgb=False`` presets list their mean/std in BGR order.
"""
from __future__ import annotations

import copy

from ..errors import ConfigError

NORM_PRESETS = {
    # torchvision ImageNet weights (ResNet-50/101 resnet50-19c8e357.pth ...): the MMDetection
    # default for style='pytorch' backbones (Faster/Mask R-CNN, RetinaNet, ATSS, GFL, DETR ...).
    "pytorch": dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True),
    # MSRA / Detectron2 caffe ResNet-50/101 (open-mmlab://detectron2/resnet50_caffe): BGR, std 1
    # (mmdet configs/*/*_r50_caffe_*: e.g. rpn_r50_caffe_fpn_1x_coco.py).
    "caffe": dict(mean=[103.53, 116.28, 123.675], std=[1.0, 1.0, 1.0], to_rgb=False),
    # Detectron1 caffe ResNet as used by the original FCOS weights
    # (mmdet fcos_r50-caffe_fpn_gn-head_1x_coco.py data_preprocessor): BGR, std 1.
    "caffe_detectron1": dict(mean=[102.9801, 115.9465, 122.7717], std=[1.0, 1.0, 1.0],
                             to_rgb=False),
    # pycls RegNetX weights (open-mmlab://regnetx_3.2gf ...; mmdet configs/regnet/: "The mean and
    # std are used in PyCls when training RegNets"): BGR, per-channel std.
    "pycls": dict(mean=[103.53, 116.28, 123.675], std=[57.375, 57.12, 58.395], to_rgb=False),
    # Caffe2 ResNeXt-101 32x8d trained at FB (open-mmlab://detectron2/resnext101_32x8d; mmdet
    # mask-rcnn_x101-32x8d_fpn_1x_coco.py). Same numbers as pycls, kept as its own name.
    "caffe2": dict(mean=[103.53, 116.28, 123.675], std=[57.375, 57.12, 58.395], to_rgb=False),
    # SSD300/512 with the caffe VGG16 (open-mmlab://vgg16_caffe; mmdet ssd300_coco.py): RGB, std 1.
    "ssd": dict(mean=[123.675, 116.28, 103.53], std=[1.0, 1.0, 1.0], to_rgb=True),
    # YOLOv3 DarkNet-53 (mmdet yolov3_d53_*): RGB scaled to [0, 1].
    "yolo": dict(mean=[0.0, 0.0, 0.0], std=[255.0, 255.0, 255.0], to_rgb=True),
    # PaddleDetection NormalizeImage(is_scale=True, mean=[0.485,0.456,0.406],
    # std=[0.229,0.224,0.225]) on RGB: the torchvision numbers times 255. Paddle computes
    # (x / 255 - m) / s in float32 and normalises *before* resizing, so its tensors differ from
    # this pipeline's by float rounding and by the resize of a float image.
    "paddle": dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True),
}
# the model-zoo tables call the pytorch style "torchvision" and the caffe style "msra"
NORM_PRESETS["torchvision"] = NORM_PRESETS["pytorch"]
NORM_PRESETS["msra"] = NORM_PRESETS["caffe"]
# RegNetX configs (configs/regnet/) name the pycls weights by their architecture
NORM_PRESETS["regnet"] = NORM_PRESETS["pycls"]


def get_norm_cfg(name: str) -> dict:
    """A fresh copy of ``NORM_PRESETS[name]`` (mean, std, to_rgb) for ``Normalize(**cfg)``."""
    if name not in NORM_PRESETS:
        raise ConfigError(f"unknown normalisation preset {name!r}; "
                          f"known: {', '.join(sorted(NORM_PRESETS))}")
    return copy.deepcopy(NORM_PRESETS[name])
