"""torchvision checkpoints -> detzoo: converter on checkpoints synthesised from the exact torchvision
layouts (/work/shared/checkpoint-layouts/torchvision), strict loading, and hand-worked values of
the torchvision numerics (transform sizes, rounded anchors and strides, box coder, RoI levels)."""
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from detzoo.errors import CheckpointError
from detzoo.zoo.converters.torchvision import ARCHS, convert

ROOT = Path(__file__).resolve().parents[2]
LAYOUTS = Path("/work/shared/checkpoint-layouts/torchvision")
if not LAYOUTS.exists():
    LAYOUTS = ROOT / "tests" / "data" / "checkpoint-layouts" / "torchvision"


def synth_state_dict(arch: str, seed: int = 0, std: float = 0.05) -> dict:
    layout = json.loads((LAYOUTS / f"{arch}.json").read_text())["layout"]
    gen = torch.Generator().manual_seed(seed)
    state = {key: torch.randn(shape, generator=gen) * std for key, shape in layout}
    for key in state:
        if key.endswith("running_var"):
            state[key] = state[key].abs() + 1.0
    return state


def build(arch: str):
    from detzoo.config import load_config
    from detzoo.models.builder import build_detector

    return build_detector(load_config(str(ROOT / "configs" / "torchvision" / f"{arch}.py"))["model"]).eval()


@pytest.mark.skipif(not LAYOUTS.exists(), reason="torchvision layouts not available")
@pytest.mark.parametrize("arch", ARCHS)
def test_convert_loads_strictly(arch):
    state = synth_state_dict(arch)
    out = convert(state)  # arch inferred from the keys
    assert out["meta"]["arch"] == arch
    assert out["meta"]["config"] == f"configs/torchvision/{arch}.py"
    assert out["meta"]["source"] == "torchvision"
    classes = out["meta"]["CLASSES"]
    assert len(classes) == 91 and classes[0] == "__background__" and classes[1] == "person"
    assert classes[90] == "toothbrush" and classes.count("N/A") == 10
    model = build(arch)
    model.load_state_dict(out["state_dict"], strict=True)
    # values travel unchanged: spot-check a few renamed tensors
    pairs = {"backbone.body.layer1.0.conv1.weight": "backbone.layer1.0.conv1.weight",
             "backbone.fpn.layer_blocks.0.0.weight": "neck.fpn_convs.0.conv.weight"}
    if arch.startswith(("faster", "mask")):
        pairs["roi_heads.box_predictor.cls_score.weight"] = "roi_head.bbox_head.fc_cls.weight"
    elif arch.startswith("retina"):
        pairs["backbone.fpn.extra_blocks.p7.weight"] = "neck.fpn_convs.4.conv.weight"
        pairs["head.classification_head.cls_logits.bias"] = "bbox_head.retina_cls.bias"
    else:
        pairs["head.regression_head.conv.4.weight"] = "bbox_head.reg_convs.1.gn.weight"
        pairs["head.regression_head.bbox_ctrness.weight"] = "bbox_head.conv_centerness.weight"
    loaded = model.state_dict()
    for tv_key, dz_key in pairs.items():
        assert torch.equal(loaded[dz_key], state[tv_key]), tv_key


@pytest.mark.skipif(not LAYOUTS.exists(), reason="torchvision layouts not available")
def test_convert_errors_and_old_layout():
    state = synth_state_dict("fasterrcnn_resnet50_fpn")
    with pytest.raises(CheckpointError, match="retinanet"):
        convert(state, arch="retinanet_resnet50_fpn")
    with pytest.raises(CheckpointError, match="not a known torchvision"):
        convert({"foo.weight": torch.zeros(1)})
    bad = dict(state, **{"roi_heads.extra.weight": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="roi_heads.extra.weight"):
        convert(bad)
    # pre-0.13 names (plain convs, no ".0") and a "module." prefix convert to the same keys
    old = {}
    for key, value in state.items():
        key = key.replace("inner_blocks.0.0.", "inner_blocks.0.").replace("rpn.head.conv.0.0.", "rpn.head.conv.")
        old["module." + key] = value
    assert convert({"model": old})["state_dict"].keys() == convert(state)["state_dict"].keys()


def test_transform_sizes_and_values():
    from detzoo.data.transforms.torchvision_transform import TorchvisionResizeNormalize

    # 640x480 -> torchvision's well-known 1066x800. The scale is a float32 torch division, as in
    # torchvision: for 427x640 torch's 800 / tensor(427.) is 1.87353623, one ulp below the correctly
    # rounded quotient, so floor(427 * s) = 799 (not 800)
    assert float(800 / torch.tensor(427.0)) == pytest.approx(1.873536229133606, abs=1e-12)
    for (h, w), expected in {(480, 640): (800, 1066), (427, 640): (799, 1199), (1000, 200): (1333, 266)}.items():
        out = TorchvisionResizeNormalize()({"img": np.zeros((h, w, 3), np.uint8)})
        assert out["img"].shape[:2] == expected
    # values: normalise first, then bilinear (align_corners=False, half-pixel) by hand, x2 upscale
    rng = np.random.default_rng(0)
    bgr = rng.integers(0, 256, (3, 4, 3), dtype=np.uint8)
    step = TorchvisionResizeNormalize(min_size=6, max_size=100)
    out = step({"img": bgr.copy()})["img"]
    assert out.shape == (6, 8, 3)
    mean, std = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)
    norm = (bgr[..., ::-1].astype(np.float32) / np.float32(255) - mean) / std
    expected = np.zeros((6, 8, 3), np.float64)
    for oy in range(6):
        for ox in range(8):
            sy, sx = max((oy + 0.5) * 3 / 6 - 0.5, 0), max((ox + 0.5) * 4 / 8 - 0.5, 0)
            y0, x0 = int(sy), int(sx)
            y1, x1 = min(y0 + 1, 2), min(x0 + 1, 3)
            ly, lx = sy - y0, sx - x0
            expected[oy, ox] = ((1 - ly) * ((1 - lx) * norm[y0, x0] + lx * norm[y0, x1])
                                + ly * ((1 - lx) * norm[y1, x0] + lx * norm[y1, x1]))
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_anchors_rounded_and_strides_from_image():
    from detzoo.models.torchvision_compat import TorchvisionAnchorGenerator

    gen = TorchvisionAnchorGenerator(((32,), (64,), (128,), (256,), (512,)), (0.5, 1.0, 2.0), [4, 8, 16, 32, 64])
    # w = 32 / sqrt(0.5) = 45.25 -> half 22.63 -> 23; h = 22.63 -> half 11.31 -> 11
    assert gen.base_anchors[0].tolist() == [[-23, -11, 23, 11], [-16, -16, 16, 16], [-11, -23, 11, 23]]
    sizes = [(200, 304), (100, 152), (50, 76), (25, 38), (13, 19)]  # an 800x1216 padded batch
    anchors = gen.grid_anchors(sizes)
    assert [a.shape[0] for a in anchors] == [h * w * 3 for h, w in sizes]
    # P6: stride_h = 800 // 13 = 61 (not 64), stride_w = 1216 // 19 = 64
    cell = anchors[4].reshape(13, 19, 3, 4)
    assert cell[1, 2, 1].tolist() == [2 * 64 - 256, 61 - 256, 2 * 64 + 256, 61 + 256]
    assert cell[0, 0, 0].tolist() == [-362, -181, 362, 181]  # 512/sqrt(.5)/2 = 362.04, 181.02
    retina = TorchvisionAnchorGenerator([(32, 40, 50)], (0.5, 1.0, 2.0), [8])
    assert retina.base_anchors[0][3:6].tolist() == [[-16, -16, 16, 16], [-20, -20, 20, 20], [-25, -25, 25, 25]]


def test_box_coder_by_hand():
    from detzoo.models.torchvision_compat import TorchvisionBoxCoder

    coder = TorchvisionBoxCoder((10.0, 10.0, 5.0, 5.0))
    roi = torch.tensor([[10.0, 20.0, 50.0, 100.0]])  # w 40, h 80, centre (30, 60)
    deltas = torch.tensor([[10.0, -20.0, 5 * math.log(2.0), 5 * math.log(0.5)]])
    # centre (30 + 40, 60 - 160), size (80, 40)
    torch.testing.assert_close(coder.decode(roi, deltas), torch.tensor([[30.0, -120.0, 110.0, -80.0]]))
    assert coder.decode(roi, deltas, max_shape=(90, 100)).tolist() == [[30.0, 0.0, 100.0, 0.0]]
    # dw clamped from above only: log(1000/16) -> width 40 * 62.5; very negative dw is not clamped
    big = coder.decode(roi, torch.tensor([[0.0, 0.0, 50.0, -50.0]]))[0]
    assert abs(float(big[2] - big[0]) - 2500.0) < 1e-2
    assert float(big[3] - big[1]) == pytest.approx(80 * math.exp(-10), rel=1e-3)  # clamped: 1.28


def test_roi_levels_by_hand():
    from detzoo.models.torchvision_compat import TorchvisionRoIExtractor

    ext = TorchvisionRoIExtractor(dict(output_size=7, sampling_ratio=2, aligned=False), 256, [4, 8, 16, 32])
    sides = [224.0, 223.9, 112.0, 111.9, 10.0, 1000.0, 448.0]
    rois = torch.tensor([[0.0, 0.0, 0.0, s, s] for s in sides])
    # floor(4 + log2(s / 224) + 1e-6) clamped to [2, 5], minus 2
    assert ext.map_roi_levels(rois).tolist() == [2, 1, 1, 0, 0, 3, 3]
