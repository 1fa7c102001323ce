"""PaddleDetection's C4 R-CNN rows (faster_rcnn_r50_1x/2x, r50_vd_1x, r101_1x, mask_rcnn_r50_1x/2x):
archives synthesised in Paddle's layout, converted, loaded strictly into the rows' configs, and one
RoI run through res5 + average pool + fcs against a computation from the raw arrays.

Paddle's C4 names (static/ppdet/modeling): the backbone is ``ResNet(feature_maps=4)``
(``res2..res4``); ``BBoxHead(head=ResNetC5)`` runs the ``res5a..c`` blocks (same naming rules as
the backbone) on 14x14 RoIAlign features, global-average-pools and applies the ``cls_score`` /
``bbox_pred`` fcs ([in, out], 81 classes, background first); ``anchor_heads/rpn_head.py`` names
its single-level RPN ``conv_rpn_{w,b}``, ``rpn_cls_logits_{w,b}`` (the layer is called
rpn_cls_score) and ``rpn_bbox_pred_{w,b}``; Mask R-CNN C4's ``MaskHead`` has no convs: the
``conv5_mask`` 2x2 deconv ([in, out, 2, 2]) takes the 2048-channel res5 output, then
``mask_fcn_logits``.
"""
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from detzoo.config import load_config
from detzoo.engine.checkpoint import load_model_weights
from detzoo.errors import CheckpointError
from detzoo.models.builder import build_detector
from detzoo.zoo.configs import configs_root
from detzoo.zoo.converters import convert_file
from detzoo.zoo.converters.paddle import ARCHS, detect_arch
from detzoo.zoo.index import load_index

from paddle_layout import random_params, resnet_layout, write_tar

ROWS = {  # row name -> (depth, vd, mask)
    "faster_rcnn_r50_1x": (50, False, False), "faster_rcnn_r50_2x": (50, False, False),
    "faster_rcnn_r50_vd_1x": (50, True, False), "faster_rcnn_r101_1x": (101, False, False),
    "mask_rcnn_r50_1x": (50, False, True), "mask_rcnn_r50_2x": (50, False, True),
}


def c4_layout(depth=50, vd=False, mask=False):
    """Shapes of a Paddle C4 Faster / Mask R-CNN archive (Paddle's own shapes)."""
    out = resnet_layout(depth, vd)  # res2..res5: the res5 blocks are ResNetC5's
    out["conv_rpn_w"], out["conv_rpn_b"] = (1024, 1024, 3, 3), (1024,)
    out["rpn_cls_logits_w"], out["rpn_cls_logits_b"] = (15, 1024, 1, 1), (15,)  # 5 sizes x 3 ratios
    out["rpn_bbox_pred_w"], out["rpn_bbox_pred_b"] = (60, 1024, 1, 1), (60,)
    out["cls_score_w"], out["cls_score_b"] = (2048, 81), (81,)
    out["bbox_pred_w"], out["bbox_pred_b"] = (2048, 4 * 81), (4 * 81,)
    if mask:
        out["conv5_mask_w"], out["conv5_mask_b"] = (2048, 256, 2, 2), (256,)
        out["mask_fcn_logits_w"], out["mask_fcn_logits_b"] = (81, 256, 1, 1), (81,)
    return out


def zeros(shapes):
    return OrderedDict((name, np.zeros(shape, np.float32)) for name, shape in shapes.items())


def build(config):
    torch.manual_seed(0)
    return build_detector(load_config(str(configs_root() / config))["model"]).eval()


@pytest.fixture(scope="module")
def index():
    return {e.name: e for e in load_index()}


@pytest.mark.parametrize("row", sorted(ROWS))
def test_every_c4_row_is_loadable_and_its_converted_weights_load_strictly(row, index):
    depth, vd, mask = ROWS[row]
    entry = index[row]
    assert entry.status == "loadable" and entry.source == "PaddleDetection"
    method = "mask_rcnn" if mask else "faster_rcnn"
    assert entry.get("config") == f"{method}/{row}.py"
    params = zeros(c4_layout(depth, vd, mask))
    arch = detect_arch(params)
    assert arch == f"{method}_c4"
    state = ARCHS[arch](params)
    model = build(entry.get("config"))
    load_model_weights(model, state, strict=True)
    assert set(state) == set(model.state_dict())  # every key, none missing or extra


@pytest.fixture(scope="module")
def mask_r50(tmp_path_factory):
    params = random_params(c4_layout(50, False, True), seed=3)
    tar = tmp_path_factory.mktemp("paddle_c4") / "mask_rcnn_r50_1x.tar"
    write_tar(tar, params, folder="mask_rcnn_r50_1x")
    converted = convert_file(tar, "paddle")
    return params, converted


def test_c4_archive_converts_automatically_with_its_config(mask_r50):
    params, converted = mask_r50
    meta, state = converted["meta"], converted["state_dict"]
    assert meta["paddle_arch"] == "mask_rcnn_c4" and meta["config"] == "mask_rcnn/mask_rcnn_r50_1x.py"
    assert meta["backbone"] == "ResNet-50"
    model = build(meta["config"])
    load_model_weights(model, converted, strict=True)
    # plain renames, values untouched
    np.testing.assert_array_equal(state["rpn_head.rpn_conv.weight"].numpy(), params["conv_rpn_w"])
    np.testing.assert_array_equal(state["rpn_head.rpn_cls.bias"].numpy(), params["rpn_cls_logits_b"])
    np.testing.assert_array_equal(state["rpn_head.rpn_reg.weight"].numpy(), params["rpn_bbox_pred_w"])
    np.testing.assert_array_equal(state["backbone.layer3.5.conv3.weight"].numpy(), params["res4f_branch2c_weights"])
    np.testing.assert_array_equal(state["roi_head.shared_head.layer4.0.downsample.0.weight"].numpy(),
                                  params["res5a_branch1_weights"])
    np.testing.assert_array_equal(state["roi_head.shared_head.layer4.2.bn3.weight"].numpy(),
                                  params["bn5c_branch2c_scale"])
    assert not any(k.startswith("backbone.layer4") for k in state)
    # the mask head: deconv as is, logits without the background row
    np.testing.assert_array_equal(state["roi_head.mask_head.upsample.weight"].numpy(), params["conv5_mask_w"])
    np.testing.assert_array_equal(state["roi_head.mask_head.conv_logits.weight"].numpy(),
                                  params["mask_fcn_logits_w"][1:])


def _affine(x, params, name):
    return x * torch.from_numpy(params[f"{name}_scale"])[None, :, None, None] \
        + torch.from_numpy(params[f"{name}_offset"])[None, :, None, None]


def _paddle_res5_head(x, params, vd):
    """Paddle's ResNetC5 + BBoxHead on pooled features, from the raw arrays: variant b strides
    the 3x3 conv; variant d's res5a shortcut is avg-pool(2, 2, ceil) then a stride-1 1x1 conv."""
    w = lambda name: torch.from_numpy(params[name])  # noqa: E731
    for block in ("res5a", "res5b", "res5c"):
        stride = 2 if block == "res5a" else 1
        out = F.relu(_affine(F.conv2d(x, w(f"{block}_branch2a_weights")), params, f"bn5{block[4:]}_branch2a"))
        out = F.relu(_affine(F.conv2d(out, w(f"{block}_branch2b_weights"), stride=stride, padding=1), params,
                             f"bn5{block[4:]}_branch2b"))
        out = _affine(F.conv2d(out, w(f"{block}_branch2c_weights")), params, f"bn5{block[4:]}_branch2c")
        if block == "res5a":
            if vd:
                short = F.conv2d(F.avg_pool2d(x, 2, 2, ceil_mode=True), w("res5a_branch1_weights"))
            else:
                short = F.conv2d(x, w("res5a_branch1_weights"), stride=2)
            short = _affine(short, params, "bn5a_branch1")
        else:
            short = x
        x = F.relu(out + short)
    pooled = x.mean(dim=(2, 3))
    scores = F.softmax(pooled @ w("cls_score_w") + w("cls_score_b"), dim=1)
    deltas = pooled @ w("bbox_pred_w") + w("bbox_pred_b")
    return scores, deltas


@pytest.mark.parametrize("vd", [False, True], ids=["b", "vd"])
def test_one_roi_through_res5_avgpool_fc_matches_paddle_arithmetic(vd):
    params = random_params(c4_layout(50, vd, False), seed=7 + vd)
    for name in params:  # keep activations O(1) through three residual blocks
        if name.endswith("_scale"):
            params[name] = np.abs(params[name]) * 4 + 0.5
    state = ARCHS["faster_rcnn_c4"](params)
    model = build("faster_rcnn/faster_rcnn_r50_vd_1x.py" if vd else "faster_rcnn/faster_rcnn_r50_1x.py")
    load_model_weights(model, state, strict=True)
    torch.manual_seed(0)
    pooled = torch.randn(1, 1024, 14, 14)  # one RoI's 14x14 RoIAlign output on res4
    with torch.no_grad():
        cls_score, bbox_pred = model.roi_head.bbox_head(model.roi_head.shared_head(pooled))
        ref_scores, ref_deltas = _paddle_res5_head(pooled, params, vd)
    assert float(ref_scores.std()) > 1e-3  # a non-degenerate check
    ours = F.softmax(cls_score, dim=1)
    # detzoo: 80 classes then background; Paddle: background first
    torch.testing.assert_close(ours[:, :80], ref_scores[:, 1:], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(ours[:, 80], ref_scores[:, 0], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(bbox_pred, ref_deltas[:, 4:], rtol=1e-4, atol=1e-4)


def test_c4_mapping_errors_name_the_parameter():
    params = zeros(c4_layout(50, False, False))
    del params["rpn_cls_logits_w"]
    with pytest.raises(CheckpointError, match=r"'rpn_cls_logits_w' is missing"):
        ARCHS["faster_rcnn_c4"](params)
    with pytest.raises(CheckpointError, match=r"have no place in a 'faster_rcnn_c4'.*mask_"):
        ARCHS["faster_rcnn_c4"](zeros(c4_layout(50, False, True)))
    with pytest.raises(CheckpointError, match=r"'conv5_mask_w' is missing"):
        ARCHS["mask_rcnn_c4"](zeros(c4_layout(50, False, False)))
    with pytest.raises(CheckpointError, match=r"fpn"):
        ARCHS["faster_rcnn_fpn"](zeros(c4_layout(50, False, False)))
    no_res5 = zeros({k: v for k, v in c4_layout(50, False, False).items() if "5" not in k.split("_")[0]})
    with pytest.raises(CheckpointError, match=r"res5"):
        ARCHS["faster_rcnn_c4"](no_res5)
