"""PaddleDetection (static / 0.x) parameter layouts, written out independently of the converter.

Names and shapes follow Paddle's own rules (static/ppdet/modeling: resnet.py ``_conv_norm`` /
``name_adapter.py``, fpn.py, rpn_head.py ``FPNRPNHead``, bbox_head.py ``TwoFCHead``/``BBoxHead``,
cascade_head.py, mask_head.py, retina_head.py), and files are serialized the way Paddle's
``SerializeToStream`` writes a LoDTensor. Shapes are Paddle's: conv OIHW, fc [in, out], 81 classes
with background at index 0.
"""
import io
import pickle
import struct
import tarfile
from collections import OrderedDict

import numpy as np


def _conv_norm(out, conv, cout, cin, k):
    out[f"{conv}_weights"] = (cout, cin, k, k)
    bn = "bn_" + conv if conv == "conv1" else "bn" + conv[3:]  # res_conv1 -> bn_conv1 too
    out[f"{bn}_scale"] = (cout,)
    out[f"{bn}_offset"] = (cout,)


def resnet_layout(depth=50, vd=False, groups=None):
    """Paddle ResNet / ResNet-vd / ResNeXt(-vd) groups x 4d parameter shapes."""
    out = OrderedDict()
    if vd:
        _conv_norm(out, "conv1_1", 32, 3, 3)
        _conv_norm(out, "conv1_2", 32, 32, 3)
        _conv_norm(out, "conv1_3", 64, 32, 3)
    else:
        _conv_norm(out, "res_conv1" if groups else "conv1", 64, 3, 7)
    counts = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}[depth]
    cin = 64
    for stage, count in zip((2, 3, 4, 5), counts):
        if groups:  # stage_filters 256.. and groups * group_width == 256 -> expand 1
            width = 256 * 2 ** (stage - 2)
            cout, per_group = width, width // groups
        else:
            width = 64 * 2 ** (stage - 2)
            cout, per_group = width * 4, width
        for i in range(count):
            if count > 10 and stage == 4:
                name = "res4a" if i == 0 else f"res4b{i}"
            else:
                name = f"res{stage}{'abcdefghij'[i]}"
            _conv_norm(out, f"{name}_branch2a", width, cin, 1)
            _conv_norm(out, f"{name}_branch2b", width, per_group, 3)
            _conv_norm(out, f"{name}_branch2c", cout, width, 1)
            if i == 0:
                _conv_norm(out, f"{name}_branch1", cout, cin, 1)
            cin = cout
    return out


def _conv(out, name, cout, cin, k):
    out[f"{name}_w"] = (cout, cin, k, k)
    out[f"{name}_b"] = (cout,)


def fpn_layout(stages=(2, 3, 4, 5), channels=(256, 512, 1024, 2048), extra=()):
    out = OrderedDict()
    by_stage = dict(zip((2, 3, 4, 5), channels))
    top = max(stages)
    for stage in sorted(stages, reverse=True):
        inner = f"fpn_inner_res{stage}_sum" + ("" if stage == top else "_lateral")
        _conv(out, inner, 256, by_stage[stage], 1)
    for stage in sorted(stages, reverse=True):
        _conv(out, f"fpn_res{stage}_sum", 256, 256, 3)
    for level, cin in extra:
        _conv(out, f"fpn_{level}", 256, cin, 3)
    return out


def rcnn_head_layout(suffix="", reg_outputs=4 * 81):
    out = OrderedDict()
    out[f"fc6{suffix}_w"], out[f"fc6{suffix}_b"] = (256 * 7 * 7, 1024), (1024,)
    out[f"fc7{suffix}_w"], out[f"fc7{suffix}_b"] = (1024, 1024), (1024,)
    out[f"cls_score{suffix}_w"], out[f"cls_score{suffix}_b"] = (1024, 81), (81,)
    out[f"bbox_pred{suffix}_w"], out[f"bbox_pred{suffix}_b"] = (1024, reg_outputs), (reg_outputs,)
    return out


def rpn_layout():
    out = OrderedDict()
    _conv(out, "conv_rpn_fpn2", 256, 256, 3)
    _conv(out, "rpn_cls_logits_fpn2", 3, 256, 1)
    _conv(out, "rpn_bbox_pred_fpn2", 12, 256, 1)
    return out


def layout(arch, depth=50, vd=False, groups=None):
    out = resnet_layout(depth, vd, groups)
    if arch == "retinanet":
        out.update(fpn_layout((3, 4, 5), extra=((6, 2048), (7, 256))))
        for branch, pred in (("cls", 9 * 80), ("bbox", 9 * 4)):
            for i in range(4):
                _conv(out, f"retnet_{branch}_conv_n{i}_fpn3", 256, 256, 3)
            _conv(out, f"retnet_{branch}_pred_fpn3", pred, 256, 3)
        return out
    out.update(fpn_layout())
    out.update(rpn_layout())
    if arch == "cascade_rcnn_fpn":
        for suffix in ("", "_2", "_3"):
            out.update(rcnn_head_layout(suffix, reg_outputs=8))
        return out
    out.update(rcnn_head_layout())
    if arch == "mask_rcnn_fpn":
        for i in range(1, 5):
            _conv(out, f"mask_inter_feat_{i}", 256, 256, 3)
        out["conv5_mask_w"], out["conv5_mask_b"] = (256, 256, 2, 2), (256,)  # transpose conv [in, out]
        _conv(out, "mask_fcn_logits", 81, 256, 1)
    return out


def random_params(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return OrderedDict((name, (rng.standard_normal(shape, dtype=np.float32) * 0.05))
                       for name, shape in shapes.items())


# --- Paddle's file formats --------------------------------------------------------------------
_DTYPE_CODES = {np.dtype(np.float32): 5, np.dtype(np.float64): 6, np.dtype(np.int64): 3,
                np.dtype(np.int32): 2, np.dtype(np.float16): 4}


def _varint(value):
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def lod_tensor_bytes(array, lod=()):
    """One LoDTensor file: version, LoD levels, tensor version, TensorDesc protobuf, raw data."""
    array = np.ascontiguousarray(array)
    desc = b"\x08" + _varint(_DTYPE_CODES[array.dtype])  # field 1 (data_type), varint
    for dim in array.shape:
        desc += b"\x10" + _varint(dim)  # field 2 (dims), repeated int64, not packed (proto2)
    data = struct.pack("<I", 0) + struct.pack("<Q", len(lod))
    for level in lod:
        raw = np.asarray(level, dtype=np.uint64).tobytes()
        data += struct.pack("<Q", len(raw)) + raw
    data += struct.pack("<I", 0) + struct.pack("<i", len(desc)) + desc
    return data + array.astype(array.dtype.newbyteorder("<")).tobytes()


def write_tar(path, params, folder="model", extra_members=None):
    """A PaddleDetection-style .tar: one LoDTensor file per parameter in ``folder/``."""
    members = [(f"{folder}/{name}", lod_tensor_bytes(array)) for name, array in params.items()]
    members += list((extra_members or {}).items())
    with tarfile.open(path, "w") as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def write_pdparams(path, params, paddle2=False):
    """fluid.save's ``{name: ndarray}`` pickle, or paddle.save's ``{name: (name, ndarray)}``."""
    if paddle2:
        obj = {name: (f"tensor_{i}", array) for i, (name, array) in enumerate(params.items())}
        obj["StructuredToParameterName@@"] = {name: name for name in params}
    else:
        obj = dict(params)
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)
