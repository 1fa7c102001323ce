"""PaddleDetection R-CNN / RetinaNet name mapping onto detzoo keys (the archives are read by
:mod:`.paddle_archive`; :func:`read_paddle_params` is re-exported here).

Mapping (:data:`ARCHS`): Paddle's static-graph names, learnt from PaddleDetection's
``static/ppdet/modeling`` (``backbones/resnet.py``, ``resnext.py``, ``name_adapter.py``,
``fpn.py``, ``anchor_heads/rpn_head.py``, ``retina_head.py``, ``roi_heads/bbox_head.py``,
``cascade_head.py``, ``mask_head.py``), to detzoo's MMDetection-style keys:

- ResNet/ResNeXt: ``conv1_weights`` + ``bn_conv1_*`` (ResNeXt: ``res_conv1_weights``), or for
  vd the ``conv1_{1,2,3}`` deep stem (-> ``stem.{0,3,6}``, norms ``bnv1_{1,2,3}`` ->
  ``stem.{1,4,7}``: the literal ``"bn" + conv[3:]`` rule); block ``res{s}{a,b,c..}`` (ResNet-101/152 stage 4: ``res4a``,
  ``res4b1..``) convs ``_branch2{a,b,c}`` -> ``conv{1,2,3}``, shortcut ``_branch1`` ->
  ``downsample.0`` (``downsample.1`` after vd's avg-pool); norm name = ``"bn" + conv[3:]``.
  ``affine_channel`` (``_scale``/``_offset`` only) becomes a frozen BN with mean 0, var 1: with
  ``eps=0`` (our Paddle configs) it computes exactly ``x * scale + offset``. Real BN
  statistics (``_mean``/``_variance``) are kept when present.
- C4 R-CNNs (``ResNet(feature_maps=4)`` + ``BBoxHead(head=ResNetC5)``, no FPN): ``res2..res4``
  -> the backbone's ``layer1..3``; the ``res5`` blocks (``ResNetC5``, same names) -> the RoI
  head's ``roi_head.shared_head.layer4``; RPN ``conv_rpn`` / ``rpn_cls_logits`` /
  ``rpn_bbox_pred`` (``anchor_heads/rpn_head.py``) -> ``rpn_conv`` / ``rpn_cls`` / ``rpn_reg``;
  ``cls_score`` / ``bbox_pred`` straight on the pooled res5 output; Mask R-CNN C4's mask head
  has no ``mask_inter_feat`` convs (``conv5_mask`` deconv on the 2048-channel res5 output).
- FPN: ``fpn_inner_res5_sum`` / ``fpn_inner_res{k}_sum_lateral`` -> ``lateral_convs.{k-k0}``,
  ``fpn_res{k}_sum`` -> ``fpn_convs.{k-k0}`` (k0 = lowest stage used), RetinaNet's ``fpn_6``,
  ``fpn_7`` -> the next ``fpn_convs``.
- FC weights are stored [in, out] by Paddle: transposed. Classifiers have 81 outputs with
  background at index 0: the row moves to the end (``fc_cls``) or is dropped (class-specific
  ``bbox_pred`` 4x81 -> 320 rows, mask ``conv_logits``); Cascade's class-agnostic ``bbox_pred``
  (2x4: background, foreground) keeps the foreground 4.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Dict, Iterable, Mapping

import numpy as np
import torch

from detzoo.errors import CheckpointError
from .paddle_archive import parse_lod_tensor, read_paddle_params  # noqa: F401 - re-exported

# --- mapping helpers -----------------------------------------------------------------------
class _Mapper:
    """Takes Paddle arrays by name (each at most once) and records what was used."""

    def __init__(self, params: Mapping[str, np.ndarray], source: str = "paddle archive"):
        self.params = params
        self.used: set[str] = set()
        self.out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
        self.source = source

    def has(self, name: str) -> bool:
        return name in self.params

    def get(self, name: str) -> np.ndarray:
        if name not in self.params:
            raise CheckpointError(f"{self.source}: parameter {name!r} is missing (expected for "
                                  "this architecture)")
        self.used.add(name)
        return np.asarray(self.params[name])

    def put(self, key: str, array: np.ndarray) -> None:
        self.out[key] = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))

    def conv(self, weight: str, bias: str | None, key: str) -> None:
        self.put(f"{key}.weight", self.get(weight))
        if bias is not None:
            self.put(f"{key}.bias", self.get(bias))

    def norm(self, paddle_name: str, key: str) -> None:
        scale = self.get(f"{paddle_name}_scale")
        self.put(f"{key}.weight", scale)
        self.put(f"{key}.bias", self.get(f"{paddle_name}_offset"))
        if self.has(f"{paddle_name}_mean"):  # batch_norm with statistics
            self.put(f"{key}.running_mean", self.get(f"{paddle_name}_mean"))
            self.put(f"{key}.running_var", self.get(f"{paddle_name}_variance"))
        else:  # affine_channel: x * scale + offset
            self.put(f"{key}.running_mean", np.zeros_like(scale))
            self.put(f"{key}.running_var", np.ones_like(scale))

    def fc(self, name: str, key: str, rows=None) -> None:
        """Paddle fc ``{name}_w`` [in, out] / ``{name}_b`` [out] -> Linear [out, in], [out];
        ``rows`` (index array) picks/reorders output rows."""
        weight, bias = self.get(f"{name}_w").T, self.get(f"{name}_b").reshape(-1)
        if rows is not None:
            weight, bias = weight[rows], bias[rows]
        self.put(f"{key}.weight", weight)
        self.put(f"{key}.bias", bias)

    def unused(self) -> list[str]:
        return [n for n in self.params if n not in self.used]


def _block_names(params: Mapping[str, np.ndarray], stage: int, prefix: str) -> list[str]:
    """Paddle block names of one stage present in ``params`` (``res4a, res4b1..`` or ``a,b,c``)."""
    present = lambda n: f"{prefix}{n}_branch2a_weights" in params  # noqa: E731
    letters = []
    for i in range(64):
        name = f"res{stage}{chr(ord('a') + i)}" if i < 26 else None
        if name is None or not present(name):
            break
        letters.append(name)
    numbered = [f"res{stage}a"] + [f"res{stage}b{i}" for i in range(1, 64)]
    count = 0
    while count < len(numbered) and present(numbered[count]):
        count += 1
    return numbered[:count] if count > len(letters) else letters


def _bn_name(conv: str) -> str:
    """Paddle's norm name for a conv (``name_adapter.fix_conv_norm_name``): ``bn_conv1`` for the
    stem, else ``"bn" + conv[3:]`` -- literally, so the vd stem's ``conv1_1`` gives ``bnv1_1``."""
    return "bn_conv1" if conv == "conv1" else "bn" + conv[3:]


def _map_res_stage(m: _Mapper, stage: int, blocks: list[str], key: str, vd: bool, p: str = "") -> None:
    """Paddle blocks of ResNet stage ``stage`` (2..5) -> ``{key}.{i}`` (an ``nn.Sequential`` of
    Bottlenecks); vd stride-2 shortcuts start with a weight-free avg-pool at index 0."""
    for index, block in enumerate(blocks):
        block_key = f"{key}.{index}"
        for branch, conv_idx in (("2a", 1), ("2b", 2), ("2c", 3)):
            m.conv(f"{p}{block}_branch{branch}_weights", None, f"{block_key}.conv{conv_idx}")
            m.norm(f"{p}{_bn_name(f'{block}_branch{branch}')}", f"{block_key}.bn{conv_idx}")
        if m.has(f"{p}{block}_branch1_weights"):
            first = 1 if vd and stage > 2 else 0
            m.conv(f"{p}{block}_branch1_weights", None, f"{block_key}.downsample.{first}")
            m.norm(f"{p}{_bn_name(f'{block}_branch1')}", f"{block_key}.downsample.{first + 1}")


def map_resnet(m: _Mapper, prefix_key: str = "backbone", paddle_prefix: str = "",
               stages: tuple = (2, 3, 4, 5)) -> dict:
    """ResNet / ResNeXt (b or vd) backbone; returns what was found (depth, vd, stage sizes).

    ``stages``: the Paddle stages that belong to the backbone (C4 R-CNNs: 2..4; their ``res5``
    is the RoI head, :func:`map_res5_head`)."""
    p = paddle_prefix
    vd = m.has(f"{p}conv1_1_weights")
    if vd:
        for i, (conv_idx, norm_idx) in enumerate(((0, 1), (3, 4), (6, 7)), start=1):
            m.conv(f"{p}conv1_{i}_weights", None, f"{prefix_key}.stem.{conv_idx}")
            m.norm(f"{p}{_bn_name(f'conv1_{i}')}", f"{prefix_key}.stem.{norm_idx}")
    else:
        stem = f"{p}conv1_weights" if m.has(f"{p}conv1_weights") else f"{p}res_conv1_weights"
        m.conv(stem, None, f"{prefix_key}.conv1")
        m.norm(f"{p}bn_conv1", f"{prefix_key}.bn1")
    found = []
    for stage in stages:
        blocks = _block_names(m.params, stage, p)
        if not blocks:
            break
        found.append(len(blocks))
        _map_res_stage(m, stage, blocks, f"{prefix_key}.layer{stage - 1}", vd, p)
    stages = found
    if not stages:
        raise CheckpointError(f"{m.source}: no ResNet blocks ('res2a_branch2a_weights') found")
    depth = {(3, 4, 6, 3): 50, (3, 4, 23, 3): 101, (3, 8, 36, 3): 152}.get(tuple(stages))
    return dict(vd=vd, stage_blocks=tuple(stages), depth=depth)


def map_res5_head(m: _Mapper, key: str = "roi_head.shared_head", vd: bool = False) -> int:
    """C4 R-CNN: Paddle's ``ResNetC5`` RoI head (the ``res5a..`` blocks) -> ``{key}.layer4``
    (detzoo's :class:`~detzoo.models.roi_heads.ResLayer`); ``vd``: its first shortcut starts with
    an avg-pool (``ResNetC5`` of a vd model, ``variant: d``). Returns the block count."""
    blocks = _block_names(m.params, 5, "")
    if not blocks:
        raise CheckpointError(f"{m.source}: no res5 RoI head ('res5a_branch2a_weights') found")
    _map_res_stage(m, 5, blocks, f"{key}.layer4", vd)
    return len(blocks)


def map_rpn_c4(m: _Mapper, key: str = "rpn_head") -> None:
    """The single-level RPN of a C4 R-CNN (``anchor_heads/rpn_head.py`` ``RPNHead``)."""
    m.conv("conv_rpn_w", "conv_rpn_b", f"{key}.rpn_conv")
    m.conv("rpn_cls_logits_w", "rpn_cls_logits_b", f"{key}.rpn_cls")
    m.conv("rpn_bbox_pred_w", "rpn_bbox_pred_b", f"{key}.rpn_reg")


def map_fpn(m: _Mapper, key: str = "neck") -> list[int]:
    """Paddle FPN -> ``lateral_convs``/``fpn_convs``; returns the backbone stages it uses."""
    stages = [s for s in (2, 3, 4, 5) if m.has(f"fpn_res{s}_sum_w")]
    if not stages:
        raise CheckpointError(f"{m.source}: no FPN parameters ('fpn_res5_sum_w') found")
    top = stages[-1]
    for index, stage in enumerate(stages):
        inner = f"fpn_inner_res{stage}_sum" + ("" if stage == top else "_lateral")
        m.conv(f"{inner}_w", f"{inner}_b", f"{key}.lateral_convs.{index}.conv")
        m.conv(f"fpn_res{stage}_sum_w", f"fpn_res{stage}_sum_b", f"{key}.fpn_convs.{index}.conv")
    index = len(stages)
    for level in range(top + 1, top + 4):  # RetinaNet's extra stride-2 convs fpn_6, fpn_7
        if not m.has(f"fpn_{level}_w"):
            break
        m.conv(f"fpn_{level}_w", f"fpn_{level}_b", f"{key}.fpn_convs.{index}.conv")
        index += 1
    return stages


def map_rpn(m: _Mapper, key: str = "rpn_head") -> None:
    level = next((lv for lv in range(2, 7) if m.has(f"conv_rpn_fpn{lv}_w")), None)
    if level is None:
        raise CheckpointError(f"{m.source}: no FPN RPN parameters ('conv_rpn_fpn2_w') found")
    m.conv(f"conv_rpn_fpn{level}_w", f"conv_rpn_fpn{level}_b", f"{key}.rpn_conv")
    m.conv(f"rpn_cls_logits_fpn{level}_w", f"rpn_cls_logits_fpn{level}_b", f"{key}.rpn_cls")
    m.conv(f"rpn_bbox_pred_fpn{level}_w", f"rpn_bbox_pred_fpn{level}_b", f"{key}.rpn_reg")


def _background_last(num: int) -> np.ndarray:
    """Row order moving Paddle's background (row 0) behind the ``num - 1`` classes."""
    return np.concatenate([np.arange(1, num), [0]])


def map_bbox_head(m: _Mapper, key: str, suffix: str = "", class_agnostic: bool = False,
                  two_fc: bool = True) -> None:
    """TwoFCHead (``two_fc``; C4 heads have none) + classifier/regressor of one (Cascade:
    ``suffix`` ``_2``/``_3``) stage."""
    if two_fc:
        m.fc(f"fc6{suffix}", f"{key}.shared_fcs.0")
        m.fc(f"fc7{suffix}", f"{key}.shared_fcs.1")
    num = m.params[f"cls_score{suffix}_w"].shape[1] if m.has(f"cls_score{suffix}_w") else 0
    m.fc(f"cls_score{suffix}", f"{key}.fc_cls", rows=_background_last(num))
    width = m.params[f"bbox_pred{suffix}_w"].shape[1]
    if class_agnostic:
        if width != 8:
            raise CheckpointError(f"{m.source}: bbox_pred{suffix}_w has {width} outputs; a "
                                  "class-agnostic Cascade stage has 8 (background, foreground)")
        rows = np.arange(4, 8)
    else:
        if width != 4 * num:
            raise CheckpointError(f"{m.source}: bbox_pred{suffix}_w has {width} outputs, expected "
                                  f"4 x {num} classes")
        rows = np.arange(4, width)  # drop the background's 4 deltas
    m.fc(f"bbox_pred{suffix}", f"{key}.fc_reg", rows=rows)


def map_mask_head(m: _Mapper, key: str = "roi_head.mask_head") -> None:
    index = 0
    while m.has(f"mask_inter_feat_{index + 1}_w"):
        m.conv(f"mask_inter_feat_{index + 1}_w", f"mask_inter_feat_{index + 1}_b", f"{key}.convs.{index}.conv")
        index += 1
    m.conv("conv5_mask_w", "conv5_mask_b", f"{key}.upsample")  # ConvTranspose: [in, out, k, k] in both
    weight, bias = m.get("mask_fcn_logits_w"), m.get("mask_fcn_logits_b")
    m.put(f"{key}.conv_logits.weight", weight[1:])
    m.put(f"{key}.conv_logits.bias", bias[1:])


def map_retina_head(m: _Mapper, key: str = "bbox_head") -> None:
    level = next((lv for lv in range(2, 8) if m.has(f"retnet_cls_pred_fpn{lv}_w")), None)
    if level is None:
        raise CheckpointError(f"{m.source}: no RetinaNet head ('retnet_cls_pred_fpn3_w') found")
    for branch, ours in (("cls", "cls_convs"), ("bbox", "reg_convs")):
        index = 0
        while m.has(f"retnet_{branch}_conv_n{index}_fpn{level}_w"):
            name = f"retnet_{branch}_conv_n{index}_fpn{level}"
            m.conv(f"{name}_w", f"{name}_b", f"{key}.{ours}.{index}.conv")
            index += 1
    # sigmoid classifier without a background channel; anchors ratio-major as in mmdet
    m.conv(f"retnet_cls_pred_fpn{level}_w", f"retnet_cls_pred_fpn{level}_b", f"{key}.retina_cls")
    m.conv(f"retnet_bbox_pred_fpn{level}_w", f"retnet_bbox_pred_fpn{level}_b", f"{key}.retina_reg")


# --- architectures -------------------------------------------------------------------------
def _finish(m: _Mapper, arch: str, backbone: dict) -> "OrderedDict[str, torch.Tensor]":
    leftover = m.unused()
    if leftover:
        shown = ", ".join(leftover[:6]) + (f", ... (+{len(leftover) - 6} more)" if len(leftover) > 6 else "")
        raise CheckpointError(f"{m.source}: {len(leftover)} Paddle parameters have no place in a "
                              f"'{arch}' model ({shown}); is --arch right?")
    return m.out


def convert_faster_rcnn_fpn(params: Mapping[str, np.ndarray], source: str = "paddle archive"):
    m = _Mapper(params, source)
    backbone = map_resnet(m)
    map_fpn(m)
    map_rpn(m)
    map_bbox_head(m, "roi_head.bbox_head")
    return _finish(m, "faster_rcnn_fpn", backbone)


def convert_mask_rcnn_fpn(params: Mapping[str, np.ndarray], source: str = "paddle archive"):
    m = _Mapper(params, source)
    backbone = map_resnet(m)
    map_fpn(m)
    map_rpn(m)
    map_bbox_head(m, "roi_head.bbox_head")
    map_mask_head(m)
    return _finish(m, "mask_rcnn_fpn", backbone)


def convert_cascade_rcnn_fpn(params: Mapping[str, np.ndarray], source: str = "paddle archive"):
    m = _Mapper(params, source)
    backbone = map_resnet(m)
    map_fpn(m)
    map_rpn(m)
    for stage, suffix in enumerate(("", "_2", "_3")):
        map_bbox_head(m, f"roi_head.bbox_head.{stage}", suffix, class_agnostic=True)
    return _finish(m, "cascade_rcnn_fpn", backbone)


def _convert_rcnn_c4(params: Mapping[str, np.ndarray], source: str, arch: str, with_mask: bool):
    m = _Mapper(params, source)
    backbone = map_resnet(m, stages=(2, 3, 4))
    map_res5_head(m, vd=backbone["vd"])
    map_rpn_c4(m)
    map_bbox_head(m, "roi_head.bbox_head", two_fc=False)
    if with_mask:
        map_mask_head(m)
    return _finish(m, arch, backbone)


def convert_faster_rcnn_c4(params: Mapping[str, np.ndarray], source: str = "paddle archive"):
    return _convert_rcnn_c4(params, source, "faster_rcnn_c4", with_mask=False)


def convert_mask_rcnn_c4(params: Mapping[str, np.ndarray], source: str = "paddle archive"):
    return _convert_rcnn_c4(params, source, "mask_rcnn_c4", with_mask=True)


def convert_retinanet(params: Mapping[str, np.ndarray], source: str = "paddle archive"):
    m = _Mapper(params, source)
    backbone = map_resnet(m)
    map_fpn(m)
    map_retina_head(m)
    return _finish(m, "retinanet", backbone)


ARCHS: Dict[str, Callable[..., "OrderedDict[str, torch.Tensor]"]] = {
    "faster_rcnn_fpn": convert_faster_rcnn_fpn,
    "mask_rcnn_fpn": convert_mask_rcnn_fpn,
    "cascade_rcnn_fpn": convert_cascade_rcnn_fpn,
    "retinanet": convert_retinanet,
    "faster_rcnn_c4": convert_faster_rcnn_c4,
    "mask_rcnn_c4": convert_mask_rcnn_c4,
}


def detect_arch(names: Iterable[str]) -> str | None:
    """The architecture a set of Paddle parameter names belongs to (None: not one of ours)."""
    names = set(names)
    if "res2a_branch2a_weights" not in names:  # not a ResNet / ResNeXt (e.g. SENet, DarkNet)
        return None
    if any(n.startswith("retnet_cls_pred_fpn") for n in names):
        return "retinanet"
    if "fpn_res5_sum_w" in names or "fpn_res4_sum_w" in names:
        if "cls_score_3_w" in names:
            return "cascade_rcnn_fpn"
        if "mask_fcn_logits_w" in names:
            return "mask_rcnn_fpn"
        if "fc6_w" in names:
            return "faster_rcnn_fpn"
    if "cls_score_w" in names and "fc6_w" not in names and "res5a_branch2a_weights" in names:
        return "mask_rcnn_c4" if "mask_fcn_logits_w" in names else "faster_rcnn_c4"
    return None


def describe_backbone(params: Mapping[str, np.ndarray]) -> str:
    """e.g. ``ResNet-101-vd`` / ``ResNeXt-101-vd 64x4d`` from the names and shapes."""
    m = _Mapper(params)
    try:
        found = map_resnet(m)
    except CheckpointError:
        return "unknown backbone"
    depth = found["depth"] or "?"
    name = f"ResNet-{depth}"
    conv2 = params.get("res2a_branch2b_weights")
    if conv2 is not None and conv2.shape[1] != conv2.shape[0]:
        groups = conv2.shape[0] // conv2.shape[1]
        name = f"ResNeXt-{depth} {groups}x{conv2.shape[1]}d"
    return name + ("-vd" if found["vd"] else "")


# arch -> detzoo config (relative to configs/) for a ResNet-50 "b" backbone; others by name
ARCH_CONFIGS = {
    "faster_rcnn_fpn": "faster_rcnn/faster_rcnn_r50_fpn_1x.py",
    "mask_rcnn_fpn": "mask_rcnn/mask_rcnn_r50_fpn_1x.py",
    "cascade_rcnn_fpn": "cascade_rcnn/cascade_rcnn_r50_fpn_1x.py",
    "retinanet": "retinanet/retinanet_r50_fpn_1x.py",
    "faster_rcnn_c4": "faster_rcnn/faster_rcnn_r50_1x.py",
    "mask_rcnn_c4": "mask_rcnn/mask_rcnn_r50_1x.py",
}

__all__ = ["read_paddle_params", "parse_lod_tensor", "ARCHS", "ARCH_CONFIGS", "detect_arch",
           "describe_backbone", "map_resnet", "map_res5_head", "map_fpn", "map_rpn", "map_rpn_c4",
           "map_bbox_head",
           "map_mask_head", "map_retina_head"]
