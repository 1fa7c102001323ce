"""PaddleDetection YOLOv3 / SSD weights and the SENet-154-vd backbone -> detzoo state dicts.

Parameter names as PaddleDetection's static (fluid) code writes them (``static/ppdet/modeling``,
release/0.x ``ppdet/modeling``), read from its source:

* DarkNet-53 (``backbones/darknet.py``): every conv is ``<name>.conv.weights`` + batch norm
  ``<name>.bn.{scale,offset,mean,var}``; ``yolo_input`` (3x3, 32) -> ``conv1``,
  ``yolo_input.downsample`` -> ``conv_res_block1.conv``, ``stage.{i}.{j}.{0,1}`` (1x1, 3x3 of
  residual block j of stage i) -> ``conv_res_block{i+1}.res{j}.conv{1,2}``,
  ``stage.{i}.downsample`` -> ``conv_res_block{i+2}.conv``.
* MobileNet-V1 (``backbones/mobilenet.py``): ``<block>_{dw,sep}_weights`` and
  ``<block>_{dw,sep}_bn_{scale,offset,mean,variance}``, stem ``conv1``, SSD extra blocks
  ``conv7_{k}_extra{1,2}`` -> ``<block>.{dw,sep,extra1,extra2}.{conv,bn}``.
* ResNet-34 (``backbones/resnet.py``, variant b): ``conv1_weights`` + ``bn_conv1_*``, blocks
  ``res{s}{a,b,..}_branch2{a,b}`` (norm ``bn{s}{a..}_branch2{a,b}``) -> ``layer{s-1}.{i}.conv{1,2}
  /bn{1,2}``, shortcuts ``res{s}a_branch1`` -> ``downsample.{0,1}`` -- stage 2 included:
  Paddle's ResNet-18/34 projects that shortcut although its shape is unchanged, so the detzoo
  config sets ``first_block_projection=True``.
* YOLOv3 head (``anchor_heads/yolo_head.py``): per level i (coarsest first) the detection block
  ``yolo_block.{i}.{0.0, 0.1, 1.0, 1.1, 2}`` -> ``neck.detect{i+1}.conv{1..5}``,
  ``yolo_block.{i}.tip`` -> ``bbox_head.convs_bridge.{i}``, ``yolo_transition.{i}`` ->
  ``neck.conv{i+1}``, ``yolo_output.{i}.conv.{weights,bias}`` -> ``bbox_head.convs_pred.{i}``.
  The route is concatenated *before* the backbone map (as our neck does), the anchor masks
  [[6,7,8],[3,4,5],[0,1,2]] of the 9 COCO anchors give our per-level base sizes in the same
  order, and the output channels of anchor a are ``a * (5 + C) + [x, y, w, h, obj, cls...]``
  (``fluid.layers.yolo_box``) like ours: copied unchanged. Classes: COCO in category-id order,
  VOC in Paddle's alphabetical ``pascalvoc_label`` order -- both ours.
* SSD (``fluid.layers.multi_box_head`` via ``MultiBoxHead``): its convs have generated names
  ``conv2d_<n>.w_0`` / ``.b_0``, created per level as (box deltas, class scores); they are taken
  in increasing ``n``. Paddle's boxes per location are [min, each aspect ratio r and 1/r,
  sqrt(min*max)] and its classes have background at 0; ours put the sqrt(min*max) box second
  and background last, so output channels are permuted.
* SENet-154-vd (``backbones/senet.py`` on ``resnext.py``, ``name_adapter.py`` 'SEResNeXt';
  PaddleClas ``SENet154_vd``): stem ``conv1_{1,2,3}`` (norm ``conv1_{k}_bn``), block ``{n}_{i}``
  (n = stage + 2: 4..7; PaddleClas' 50/101-layer nets: 2..5) convs ``conv{n}_{i}_x{1,2,3}``,
  shortcut ``conv{n}_{i}_prj``, SE fcs ``fc{n}_{i}_{sqz,exc}_{weights,offset}`` (weights [in,
  out]: transposed). Detection rows use ``affine_channel`` norms (scale/offset only).

Each ``ARCHS`` function takes ``{name: np.ndarray}`` and returns the full state dict
(``num_batches_tracked`` = 0 added for each batch norm); a missing name, or a Paddle parameter
left without a place, is a :class:`~detzoo.errors.CheckpointError` naming it.
"""
from __future__ import annotations

import re
from collections import OrderedDict
from typing import Callable, Dict, Iterable, Mapping, Optional, Sequence

import numpy as np
import torch

from detzoo.errors import CheckpointError

from .paddle import _finish, _Mapper, map_bbox_head, map_fpn, map_mask_head, map_rpn

__all__ = ["ARCHS", "ARCH_CONFIGS", "BACKBONE_MAPPERS", "detect_arch", "map_darknet53",
           "map_mobilenet_v1", "map_resnet_basic", "map_yolov3_head", "map_ssd_head", "map_senet",
           "convert_senet_backbone", "ssd_paddle_to_ours_box_order"]


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


# --- batch norms ---------------------------------------------------------------------------
def _norm_dot(m: _Mapper, name: str, key: str) -> None:
    """DarkNet / YOLO head batch norm ``<name>.{scale,offset,mean,var}``."""
    for ours, theirs in (("weight", "scale"), ("bias", "offset"), ("running_mean", "mean"),
                         ("running_var", "var")):
        m.put(f"{key}.{ours}", m.get(f"{name}.{theirs}"))


def _conv_bn_dot(m: _Mapper, name: str, key: str) -> None:
    m.conv(f"{name}.conv.weights", None, f"{key}.conv")
    _norm_dot(m, f"{name}.bn", f"{key}.bn")


def _add_bn_counters(state: "OrderedDict[str, torch.Tensor]") -> "OrderedDict[str, torch.Tensor]":
    """Insert ``num_batches_tracked`` (0) after each ``running_var`` (Paddle keeps no counter)."""
    out = OrderedDict()
    for key, value in state.items():
        out[key] = value
        if key.endswith(".running_var"):
            out[key[: -len("running_var")] + "num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    return out


# --- backbones ------------------------------------------------------------------------------
_DARKNET_STAGES = (1, 2, 8, 8, 4)


def map_darknet53(m: _Mapper, key: str = "backbone") -> None:
    """Paddle DarkNet-53 -> :class:`~detzoo.models.backbones.Darknet` keys under ``key``."""
    _conv_bn_dot(m, "yolo_input", _join(key, "conv1"))
    _conv_bn_dot(m, "yolo_input.downsample", _join(key, "conv_res_block1.conv"))
    for i, blocks in enumerate(_DARKNET_STAGES):
        for j in range(blocks):
            for part in (0, 1):
                _conv_bn_dot(m, f"stage.{i}.{j}.{part}", _join(key, f"conv_res_block{i + 1}.res{j}.conv{part + 1}"))
        if i < len(_DARKNET_STAGES) - 1:
            _conv_bn_dot(m, f"stage.{i}.downsample", _join(key, f"conv_res_block{i + 2}.conv"))


_MOBILENET_BLOCKS = (["conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv4_1", "conv4_2"]
                     + [f"conv5_{i}" for i in range(1, 7)] + ["conv6"])


def map_mobilenet_v1(m: _Mapper, key: str = "backbone") -> int:
    """Paddle MobileNet (v1) -> :class:`~detzoo.models.backbones.MobileNetV1` keys; returns the
    number of SSD extra blocks found (``conv7_1`` ...)."""
    def conv_bn(name: str, ours: str) -> None:
        m.conv(f"{name}_weights", None, _join(key, f"{ours}.conv"))
        m.norm(f"{name}_bn", _join(key, f"{ours}.bn"))

    conv_bn("conv1", "conv1")
    for block in _MOBILENET_BLOCKS:
        conv_bn(f"{block}_dw", f"{block}.dw")
        conv_bn(f"{block}_sep", f"{block}.sep")
    extra = 0
    while m.has(f"conv7_{extra + 1}_extra1_weights"):
        extra += 1
        for part in ("extra1", "extra2"):
            conv_bn(f"conv7_{extra}_{part}", f"conv7_{extra}.{part}")
    return extra


_RESNET_BASIC_STAGES = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


def map_resnet_basic(m: _Mapper, key: str = "backbone", depth: int = 34) -> None:
    """Paddle ResNet-18/34 (variant b, batch norms) -> detzoo :class:`ResNet` keys with
    ``first_block_projection=True`` (``layer1.0.downsample`` from ``res2a_branch1``)."""
    if depth not in _RESNET_BASIC_STAGES:
        raise CheckpointError(f"Paddle ResNet depth {depth}: only 18 and 34 (basic blocks) are mapped here")
    m.conv("conv1_weights", None, _join(key, "conv1"))
    m.norm("bn_conv1", _join(key, "bn1"))
    for s, blocks in enumerate(_RESNET_BASIC_STAGES[depth], start=2):
        for i in range(blocks):
            name, ours = f"res{s}{chr(ord('a') + i)}", _join(key, f"layer{s - 1}.{i}")
            for branch, index in (("2a", 1), ("2b", 2)):
                m.conv(f"{name}_branch{branch}_weights", None, f"{ours}.conv{index}")
                m.norm(f"bn{name[3:]}_branch{branch}", f"{ours}.bn{index}")
            if i == 0:
                m.conv(f"{name}_branch1_weights", None, f"{ours}.downsample.0")
                m.norm(f"bn{name[3:]}_branch1", f"{ours}.downsample.1")


_SENET_STAGES = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}


def map_senet(m: _Mapper, key: str = "backbone", depth: int = 152) -> None:
    """Paddle SENet / SE-ResNeXt-vd -> :class:`~detzoo.models.backbones.SENet` keys.

    Norms without statistics (``affine_channel``) become mean 0 / variance 1 (see
    :mod:`.paddle`; pair with ``FrozenBN`` at ``eps=0``)."""
    if depth not in _SENET_STAGES:
        raise CheckpointError(f"Paddle SENet depth {depth} is not one of {tuple(_SENET_STAGES)}")
    for k, (conv_idx, norm_idx) in enumerate(((0, 1), (3, 4), (6, 7)), start=1):
        m.conv(f"conv1_{k}_weights", None, _join(key, f"stem.{conv_idx}"))
        m.norm(f"conv1_{k}_bn", _join(key, f"stem.{norm_idx}"))
    first = 4 if depth == 152 else 2  # ppdet: str(stage_num + 2); PaddleClas: n from 3 (152) or 1
    for stage, blocks in enumerate(_SENET_STAGES[depth]):
        n = first + stage
        for i in range(blocks):
            name, ours = f"{n}_{i + 1}", _join(key, f"layer{stage + 1}.{i}")
            for part in (1, 2, 3):
                m.conv(f"conv{name}_x{part}_weights", None, f"{ours}.conv{part}")
                m.norm(f"conv{name}_x{part}_bn", f"{ours}.bn{part}")
            for fc, ours_fc in (("sqz", "squeeze"), ("exc", "excitation")):
                m.put(f"{ours}.se.{ours_fc}.weight", m.get(f"fc{name}_{fc}_weights").T)
                m.put(f"{ours}.se.{ours_fc}.bias", m.get(f"fc{name}_{fc}_offset").reshape(-1))
            if i == 0:
                # stage 1: plain 1x1 ConvBN; stride-2 stages: avg-pool (no weights) first
                at = 0 if stage == 0 else 1
                m.conv(f"conv{name}_prj_weights", None, f"{ours}.downsample.{at}")
                m.norm(f"conv{name}_prj_bn", f"{ours}.downsample.{at + 1}")


# --- heads ------------------------------------------------------------------------------------
def map_yolov3_head(m: _Mapper, num_levels: int = 3) -> int:
    """Paddle YOLOv3Head -> ``neck`` (YOLOV3Neck) + ``bbox_head`` (YOLOV3Head); returns the
    number of classes read from ``yolo_output.0.conv.bias`` (3 anchors per level)."""
    for i in range(num_levels):
        block = f"yolo_block.{i}"
        for part, conv in (("0.0", 1), ("0.1", 2), ("1.0", 3), ("1.1", 4), ("2", 5)):
            _conv_bn_dot(m, f"{block}.{part}", f"neck.detect{i + 1}.conv{conv}")
        _conv_bn_dot(m, f"{block}.tip", f"bbox_head.convs_bridge.{i}")
        m.conv(f"yolo_output.{i}.conv.weights", f"yolo_output.{i}.conv.bias", f"bbox_head.convs_pred.{i}")
        if i < num_levels - 1:
            _conv_bn_dot(m, f"yolo_transition.{i}", f"neck.conv{i + 1}")
    channels = m.get("yolo_output.0.conv.bias").size
    if channels % 3 or channels // 3 <= 5:
        raise CheckpointError(f"{m.source}: yolo_output.0.conv.bias has {channels} channels, not "
                              "3 anchors x (5 + classes)")
    return channels // 3 - 5


# Paddle's ssd_mobilenet_v1_voc MultiBoxHead: aspect ratios [[2], [2, 3] x 5], no max size on
# the first level (configs/ssd/ssd_mobilenet_v1_voc.yml)
_SSD_MOBILENET_LEVELS = ((1, False),) + ((2, True),) * 5


def ssd_paddle_to_ours_box_order(num_ratios: int, has_max: bool) -> list[int]:
    """Our box j per location = Paddle's box ``order[j]``: Paddle ``prior_box`` (flip, default
    ``min_max_aspect_ratios_order=False``) emits [min, r1, 1/r1, r2, 1/r2, .., sqrt(min*max)],
    we emit [min, sqrt(min*max), r1, 1/r1, ..] (ours: detzoo SSDAnchorGenerator)."""
    ratios = list(range(1, 1 + 2 * num_ratios))
    return [0] + ([1 + 2 * num_ratios] if has_max else []) + ratios


def _numbered_convs(m: _Mapper) -> list[int]:
    pattern = re.compile(r"^conv2d_(\d+)\.w_0$")
    return sorted(int(match.group(1)) for name in m.params if (match := pattern.match(name)))


def map_ssd_head(m: _Mapper, levels: Sequence[tuple[int, bool]] = _SSD_MOBILENET_LEVELS,
                 key: str = "bbox_head") -> int:
    """Paddle multi_box_head convs -> SSDHead ``reg_convs.{l}.0`` / ``cls_convs.{l}.0`` with
    boxes reordered and background moved last; returns the number of object classes."""
    numbers = _numbered_convs(m)
    if len(numbers) != 2 * len(levels):
        raise CheckpointError(f"{m.source}: expected {2 * len(levels)} multi_box_head convs "
                              f"('conv2d_<n>.w_0', box and class per level), found {len(numbers)}")
    num_classes = None
    for level, (num_ratios, has_max) in enumerate(levels):
        order = ssd_paddle_to_ours_box_order(num_ratios, has_max)
        boxes = len(order)
        for which, n in (("reg", numbers[2 * level]), ("cls", numbers[2 * level + 1])):
            weight, bias = m.get(f"conv2d_{n}.w_0"), m.get(f"conv2d_{n}.b_0").reshape(-1)
            per_box = weight.shape[0] // boxes
            if weight.shape[0] % boxes or (which == "reg" and per_box != 4):
                raise CheckpointError(f"{m.source}: conv2d_{n}.w_0 has {weight.shape[0]} outputs; level "
                                      f"{level} {'box deltas' if which == 'reg' else 'scores'} need "
                                      f"{boxes} boxes x {'4' if which == 'reg' else 'classes'}")
            weight = weight.reshape(boxes, per_box, *weight.shape[1:])[order]
            bias = bias.reshape(boxes, per_box)[order]
            if which == "cls":
                classes = np.r_[1:per_box, 0]  # background (Paddle 0) last
                weight, bias = weight[:, classes], bias[:, classes]
                if num_classes not in (None, per_box - 1):
                    raise CheckpointError(f"{m.source}: conv2d_{n}.w_0 scores {per_box} classes, "
                                          f"level 0 scored {num_classes + 1}")
                num_classes = per_box - 1
            m.put(f"{key}.{which}_convs.{level}.0.weight", weight.reshape(-1, *weight.shape[2:]))
            m.put(f"{key}.{which}_convs.{level}.0.bias", bias.reshape(-1))
    return num_classes


# --- architectures ----------------------------------------------------------------------------
def _yolov3(backbone: Callable[[_Mapper], object], arch: str):
    def convert(params: Mapping[str, np.ndarray], source: str = "paddle archive"):
        m = _Mapper(params, source)
        backbone(m)
        map_yolov3_head(m)
        return _add_bn_counters(_finish(m, arch, {}))
    convert.__name__ = f"convert_{arch}"
    convert.__doc__ = f"Paddle {arch} parameters -> detzoo YOLOV3 state dict."
    return convert


def convert_ssd_mobilenet_v1(params: Mapping[str, np.ndarray], source: str = "paddle archive"):
    """Paddle ssd_mobilenet_v1_voc parameters -> detzoo SSD (MobileNetV1 + SSDHead) state dict."""
    m = _Mapper(params, source)
    if map_mobilenet_v1(m) != 4:
        raise CheckpointError(f"{source}: an SSD MobileNet needs the 4 extra blocks conv7_1..conv7_4")
    map_ssd_head(m)
    return _add_bn_counters(_finish(m, "ssd_mobilenet_v1", {}))


def _rcnn_se154(mask: bool):
    arch = "mask_rcnn_se154_vd_fpn" if mask else "faster_rcnn_se154_vd_fpn"

    def convert(params: Mapping[str, np.ndarray], source: str = "paddle archive"):
        m = _Mapper(params, source)
        map_senet(m, "backbone", depth=152)
        map_fpn(m)
        map_rpn(m)
        map_bbox_head(m, "roi_head.bbox_head")
        if mask:
            map_mask_head(m)
        return _finish(m, arch, {})  # FrozenBN norms: no counters
    convert.__name__ = f"convert_{arch}"
    convert.__doc__ = f"Paddle {arch}_s1x parameters -> detzoo state dict (SENet-154-vd backbone)."
    return convert


def convert_senet_backbone(params: Mapping[str, np.ndarray], depth: int = 152, prefix: str = "",
                           source: str = "paddle archive") -> "OrderedDict[str, torch.Tensor]":
    """Backbone-only SENet keys (ImageNet weights: the classifier ``fc6_*`` is ignored)."""
    m = _Mapper(params, source)
    map_senet(m, prefix, depth)
    return _add_bn_counters(m.out)


_YOLO_BACKBONES = {
    "darknet53": map_darknet53,
    "mobilenet_v1": lambda m: map_mobilenet_v1(m),
    "r34": lambda m: map_resnet_basic(m, depth=34),
}

ARCHS: Dict[str, Callable[..., "OrderedDict[str, torch.Tensor]"]] = {}
for _name, _map in _YOLO_BACKBONES.items():
    for _data in ("coco", "voc"):  # one mapping; the class count comes from the arrays
        ARCHS[f"yolov3_{_name}_{_data}"] = _yolov3(_map, f"yolov3_{_name}_{_data}")
ARCHS["ssd_mobilenet_v1_voc"] = convert_ssd_mobilenet_v1
ARCHS["faster_rcnn_se154_vd_fpn"] = _rcnn_se154(mask=False)
ARCHS["mask_rcnn_se154_vd_fpn"] = _rcnn_se154(mask=True)

#: arch -> detzoo config (relative to configs/) that the converted state dict loads into strictly
ARCH_CONFIGS = {
    "yolov3_darknet53_coco": "yolo/yolov3_darknet_270e_coco.py",
    "yolov3_darknet53_voc": "yolo/yolov3_darknet_voc.py",
    "yolov3_mobilenet_v1_coco": "yolo/yolov3_mobilenet_v1_270e_coco.py",
    "yolov3_mobilenet_v1_voc": "yolo/yolov3_mobilenet_v1_voc.py",
    "yolov3_r34_coco": "yolo/yolov3_r34_270e_coco.py",
    "yolov3_r34_voc": "yolo/yolov3_r34_voc.py",
    "ssd_mobilenet_v1_voc": "ssd/ssd300_mobilenet_v1_voc.py",
    "faster_rcnn_se154_vd_fpn": "faster_rcnn/faster_rcnn_se154_vd_fpn_s1x.py",
    "mask_rcnn_se154_vd_fpn": "mask_rcnn/mask_rcnn_se154_vd_fpn_s1x.py",
}

#: detzoo backbone class name -> mapping of Paddle ImageNet weights to its keys (no prefix;
#: classifier weights are left unused)
BACKBONE_MAPPERS: Dict[str, Callable[[_Mapper], object]] = {
    "SENet": lambda m: map_senet(m, "", depth=(152 if m.has("conv7_1_x1_weights")
                                               else 101 if m.has("conv4_23_x1_weights") else 50)),
    "Darknet": lambda m: map_darknet53(m, ""),
    "MobileNetV1": lambda m: map_mobilenet_v1(m, ""),
    "ResNet": lambda m: map_resnet_basic(m, "", depth=34 if m.has("res2c_branch2a_weights") else 18),
}


def detect_arch(names: Iterable[str]) -> Optional[str]:
    """The arch of a set of Paddle names. YOLOv3's dataset (COCO / VOC) needs the output
    shape: given a dict's ``keys()`` view, its dict is read through the view's ``mapping``;
    plain names give the COCO arch (the mapping itself reads the class count from the arrays)."""
    params = getattr(names, "mapping", None)
    if params is not None and "yolo_output.0.conv.bias" in params:
        return detect_arch_with_shapes(params)
    names = set(names)
    if "conv4_1_x1_weights" in names and "fpn_res5_sum_w" in names:
        return "mask_rcnn_se154_vd_fpn" if "mask_fcn_logits_w" in names else "faster_rcnn_se154_vd_fpn"
    if "yolo_output.0.conv.weights" in names:
        if "yolo_input.conv.weights" in names:
            return "yolov3_darknet53_coco"
        if "conv2_1_dw_weights" in names:
            return "yolov3_mobilenet_v1_coco"
        if "res2a_branch2a_weights" in names:
            return "yolov3_r34_coco"
    if "conv7_1_extra1_weights" in names and any(n.startswith("conv2d_") for n in names):
        return "ssd_mobilenet_v1_voc"
    return None


def detect_arch_with_shapes(params: Mapping[str, np.ndarray]) -> Optional[str]:
    """:func:`detect_arch`, with YOLOv3's dataset read from ``yolo_output.0.conv.bias`` (75
    channels: VOC's 20 classes; 255: COCO's 80)."""
    arch = detect_arch(set(params))
    if arch and arch.endswith("_coco") and np.asarray(params["yolo_output.0.conv.bias"]).size == 3 * 25:
        arch = arch[: -len("_coco")] + "_voc"
    return arch
