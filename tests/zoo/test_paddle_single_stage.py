"""PaddleDetection YOLOv3 / SSD / SENet weights -> detzoo (detzoo.zoo.converters.paddle_single_stage).

The Paddle parameter names and shapes are written here independently, from the rules of
PaddleDetection's static code (backbones/darknet.py, mobilenet.py, resnet.py, senet.py +
name_adapter.py, anchor_heads/yolo_head.py, fluid multi_box_head), filled with random values,
converted, loaded strictly into the detzoo model of the row's config, and checked value by value
and on hand-picked output channels.
"""
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from detzoo.config import load_config
from detzoo.errors import CheckpointError
from detzoo.models.builder import build_detector
from detzoo.zoo.converters import paddle_single_stage as pss

RNG = np.random.default_rng(0)


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def add_conv_bn_dot(params, name, cout, cin, k):
    """Darknet / YOLO-head conv + batch norm: <name>.conv.weights, <name>.bn.{scale,offset,mean,var}."""
    params[f"{name}.conv.weights"] = (rand(cout, cin, k, k) / np.sqrt(cin * k * k)).astype(np.float32)  # finite activations
    for suffix in ("scale", "offset", "mean"):
        params[f"{name}.bn.{suffix}"] = rand(cout) * 0.5
    params[f"{name}.bn.var"] = RNG.uniform(0.5, 2.0, cout).astype(np.float32)


def add_conv_bn_us(params, conv, bn, cout, cin, k, groups=1, stats=True):
    """ResNet / MobileNet / SENet conv + norm: <conv>_weights, <bn>_{scale,offset,mean,variance}."""
    params[f"{conv}_weights"] = (rand(cout, cin // groups, k, k) / np.sqrt(cin // groups * k * k)).astype(np.float32)
    params[f"{bn}_scale"] = rand(cout) * 0.5
    params[f"{bn}_offset"] = rand(cout) * 0.5
    if stats:
        params[f"{bn}_mean"] = rand(cout)
        params[f"{bn}_variance"] = RNG.uniform(0.5, 2.0, cout).astype(np.float32)


def paddle_darknet53():
    p = OrderedDict()
    add_conv_bn_dot(p, "yolo_input", 32, 3, 3)
    add_conv_bn_dot(p, "yolo_input.downsample", 64, 32, 3)
    for i, count in enumerate((1, 2, 8, 8, 4)):
        ch = 32 * 2 ** i
        for j in range(count):
            add_conv_bn_dot(p, f"stage.{i}.{j}.0", ch, 2 * ch, 1)
            add_conv_bn_dot(p, f"stage.{i}.{j}.1", 2 * ch, ch, 3)
        if i < 4:
            add_conv_bn_dot(p, f"stage.{i}.downsample", 4 * ch, 2 * ch, 3)
    return p, (1024, 512, 256)


def paddle_mobilenet(extra=False):
    p = OrderedDict()
    add_conv_bn_us(p, "conv1", "conv1_bn", 32, 3, 3)
    blocks = [("conv2_1", 32, 64), ("conv2_2", 64, 128), ("conv3_1", 128, 128), ("conv3_2", 128, 256),
              ("conv4_1", 256, 256), ("conv4_2", 256, 512)] + [(f"conv5_{i}", 512, 512) for i in range(1, 6)] \
        + [("conv5_6", 512, 1024), ("conv6", 1024, 1024)]
    for name, cin, cout in blocks:
        add_conv_bn_us(p, f"{name}_dw", f"{name}_dw_bn", cin, cin, 3, groups=cin)
        add_conv_bn_us(p, f"{name}_sep", f"{name}_sep_bn", cout, cin, 1)
    if extra:
        cin = 1024
        for k, (f1, f2) in enumerate(((256, 512), (128, 256), (128, 256), (64, 128)), start=1):
            add_conv_bn_us(p, f"conv7_{k}_extra1", f"conv7_{k}_extra1_bn", f1, cin, 1)
            add_conv_bn_us(p, f"conv7_{k}_extra2", f"conv7_{k}_extra2_bn", f2, f1, 3)
            cin = f2
    return p, (1024, 512, 256)


def paddle_resnet34():
    p = OrderedDict()
    add_conv_bn_us(p, "conv1", "bn_conv1", 64, 3, 7)
    cin = 64
    for s, (count, ch) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512)), start=2):
        for i in range(count):
            name = f"res{s}{'abcdef'[i]}"
            add_conv_bn_us(p, f"{name}_branch2a", f"bn{s}{'abcdef'[i]}_branch2a", ch, cin, 3)
            add_conv_bn_us(p, f"{name}_branch2b", f"bn{s}{'abcdef'[i]}_branch2b", ch, ch, 3)
            if i == 0:  # stage 2 too: depth < 50 and is_first
                add_conv_bn_us(p, f"{name}_branch1", f"bn{s}a_branch1", ch, cin, 1)
            cin = ch
    return p, (512, 256, 128)


def add_yolo_head(p, backbone_channels, num_classes):
    """yolo_head.py _get_outputs: blocks coarsest first; route (transition, upsampled) first in concat."""
    route = 0
    for i, feat in enumerate(backbone_channels):
        ch = 512 >> i
        cin = feat + route
        add_conv_bn_dot(p, f"yolo_block.{i}.0.0", ch, cin, 1)
        add_conv_bn_dot(p, f"yolo_block.{i}.0.1", 2 * ch, ch, 3)
        add_conv_bn_dot(p, f"yolo_block.{i}.1.0", ch, 2 * ch, 1)
        add_conv_bn_dot(p, f"yolo_block.{i}.1.1", 2 * ch, ch, 3)
        add_conv_bn_dot(p, f"yolo_block.{i}.2", ch, 2 * ch, 1)
        add_conv_bn_dot(p, f"yolo_block.{i}.tip", 2 * ch, ch, 3)
        p[f"yolo_output.{i}.conv.weights"] = rand(3 * (5 + num_classes), 2 * ch, 1, 1)
        p[f"yolo_output.{i}.conv.bias"] = rand(3 * (5 + num_classes))
        if i < 2:
            add_conv_bn_dot(p, f"yolo_transition.{i}", 256 >> i, ch, 1)
            route = 256 >> i
    return p


def build(config):
    torch.manual_seed(0)
    return build_detector(load_config(config)["model"]).eval()


def strict_load(model, state):
    missing, unexpected = model.load_state_dict(state, strict=True)
    assert not missing and not unexpected


YOLO_CASES = {
    "yolov3_mobilenet_v1_voc": (paddle_mobilenet, "configs/yolo/yolov3_mobilenet_v1_voc.py", 20),
    "yolov3_r34_voc": (paddle_resnet34, "configs/yolo/yolov3_r34_voc.py", 20),
    "yolov3_darknet53_voc": (paddle_darknet53, "configs/yolo/yolov3_darknet_voc.py", 20),
}


@pytest.mark.parametrize("arch", sorted(YOLO_CASES))
def test_yolov3_weights_load_strictly_and_keep_output_channels(arch):
    make_backbone, config, classes = YOLO_CASES[arch]
    params, channels = make_backbone()
    add_yolo_head(params, channels, classes)
    assert pss.detect_arch_with_shapes(params) == arch
    state = pss.ARCHS[arch](params)
    model = build(config)
    strict_load(model, state)
    sd = model.state_dict()

    # hand-picked values (including the BN variance naming '.bn.var' and transition placement)
    assert torch.equal(sd["neck.detect2.conv4.conv.weight"], torch.from_numpy(params["yolo_block.1.1.1.conv.weights"]))
    assert torch.equal(sd["neck.conv2.bn.running_var"], torch.from_numpy(params["yolo_transition.1.bn.var"]))
    assert torch.equal(sd["bbox_head.convs_bridge.2.bn.bias"], torch.from_numpy(params["yolo_block.2.tip.bn.offset"]))
    if arch.startswith("yolov3_darknet"):
        assert torch.equal(sd["backbone.conv_res_block3.res5.conv2.conv.weight"],
                           torch.from_numpy(params["stage.2.5.1.conv.weights"]))
        assert torch.equal(sd["backbone.conv_res_block4.conv.bn.weight"],
                           torch.from_numpy(params["stage.2.downsample.bn.scale"]))
    elif arch.startswith("yolov3_r34"):
        assert torch.equal(sd["backbone.layer1.0.downsample.0.weight"], torch.from_numpy(params["res2a_branch1_weights"]))
        assert torch.equal(sd["backbone.layer3.5.bn2.running_mean"], torch.from_numpy(params["bn4f_branch2b_mean"]))
    else:
        assert torch.equal(sd["backbone.conv5_3.dw.conv.weight"], torch.from_numpy(params["conv5_3_dw_weights"]))

    # one output channel by hand: level 1, anchor 2, class 7 is Paddle channel 2*(5+C)+5+7
    captured = {}
    head = model.bbox_head
    hook = head.convs_pred[1].register_forward_hook(lambda mod, inp, out: captured.update(x=inp[0], y=out))
    with torch.no_grad():
        model.bbox_head(model.neck(model.backbone(torch.randn(1, 3, 64, 64))))
    hook.remove()
    channel = 2 * (5 + classes) + 5 + 7
    w = torch.from_numpy(params["yolo_output.1.conv.weights"][channel])  # [in, 1, 1]
    b = float(params["yolo_output.1.conv.bias"][channel])
    expected = (captured["x"][0] * w).sum(0) + b
    torch.testing.assert_close(captured["y"][0, channel], expected, rtol=1e-4, atol=1e-4)


def test_missing_and_leftover_parameters_are_named():
    params, channels = paddle_mobilenet()
    add_yolo_head(params, channels, 80)
    broken = OrderedDict(params)
    del broken["yolo_block.1.tip.bn.mean"]
    with pytest.raises(CheckpointError, match=r"yolo_block\.1\.tip\.bn\.mean"):
        pss.ARCHS["yolov3_mobilenet_v1_coco"](broken)
    extra = OrderedDict(params)
    extra["some_unknown_fc_w"] = rand(3, 3)
    with pytest.raises(CheckpointError, match="some_unknown_fc_w"):
        pss.ARCHS["yolov3_mobilenet_v1_coco"](extra)


def paddle_ssd_mobilenet(first_conv_number=47):
    p, _ = paddle_mobilenet(extra=True)
    # multi_box_head: per level a box-delta conv then a score conv, numbered conv2d_<n>
    n = first_conv_number
    for cin, boxes in zip((512, 1024, 512, 256, 256, 128), (3, 6, 6, 6, 6, 6)):
        for out in (boxes * 4, boxes * 21):
            p[f"conv2d_{n}.w_0"] = rand(out, cin, 1, 1)
            p[f"conv2d_{n}.b_0"] = rand(out)
            n += 1
    return p


def test_ssd_mobilenet_reorders_boxes_and_moves_background_last():
    params = paddle_ssd_mobilenet()
    assert pss.detect_arch(params) == "ssd_mobilenet_v1_voc"
    state = pss.ARCHS["ssd_mobilenet_v1_voc"](params)
    model = build("configs/ssd/ssd300_mobilenet_v1_voc.py")
    strict_load(model, state)
    sd = model.state_dict()
    cls1, reg1 = sd["bbox_head.cls_convs.1.0.weight"], sd["bbox_head.reg_convs.1.0.weight"]
    paddle_cls1, paddle_reg1 = params["conv2d_50.w_0"], params["conv2d_49.w_0"]
    # level 1 has 6 boxes: Paddle [min, 2, 1/2, 3, 1/3, sqrt(min*max)], ours [min, sqrt(min*max), 2, ...]
    # ours box 1 class 20 (background) = Paddle box 5 class 0
    assert torch.equal(cls1[1 * 21 + 20], torch.from_numpy(paddle_cls1[5 * 21 + 0]))
    # ours box 2 class 0 (aeroplane) = Paddle box 1 class 1
    assert torch.equal(cls1[2 * 21 + 0], torch.from_numpy(paddle_cls1[1 * 21 + 1]))
    # ours box 0 class 14 (person) = Paddle box 0 class 15
    assert torch.equal(cls1[14], torch.from_numpy(paddle_cls1[15]))
    for k in range(4):
        assert torch.equal(reg1[4 + k], torch.from_numpy(paddle_reg1[20 + k]))
        assert torch.equal(reg1[8 + k], torch.from_numpy(paddle_reg1[4 + k]))
    # level 0 (3 boxes, no max size): boxes keep their order, only classes move
    cls0 = sd["bbox_head.cls_convs.0.0.bias"]
    paddle_cls0 = params["conv2d_48.b_0"]
    assert float(cls0[2 * 21 + 20]) == float(paddle_cls0[2 * 21 + 0])
    assert float(cls0[1 * 21 + 3]) == float(paddle_cls0[1 * 21 + 4])

    # the geometry behind the reorder: our level-1 box 1 is the sqrt(min*max) square, box 2 is
    # w/h = 2 (Paddle's ratio 2 box: w = min*sqrt(2), h = min/sqrt(2))
    base = model.bbox_head.anchor_generator._level_base_anchors(1)
    wh = base[:, 2:] - base[:, :2]
    side = (105.0 * 150.0) ** 0.5
    torch.testing.assert_close(wh[1], torch.tensor([side, side]))
    torch.testing.assert_close(wh[2], torch.tensor([105 * 2 ** 0.5, 105 / 2 ** 0.5]))


def test_ssd_head_conv_count_is_checked():
    params = paddle_ssd_mobilenet()
    del params["conv2d_58.w_0"], params["conv2d_58.b_0"]
    with pytest.raises(CheckpointError, match="multi_box_head"):
        pss.ARCHS["ssd_mobilenet_v1_voc"](params)


def paddle_senet(depth_blocks=(3, 8, 36, 3), widths=(32, 64, 128, 256), groups=8, stem=16,
                 first_number=4, stats=True):
    """SENet-vd names (name_adapter 'SEResNeXt'); Paddle's widths shrunk, names unchanged."""
    p = OrderedDict()
    cin = 3
    for k, cout in enumerate((stem // 2, stem // 2, stem), start=1):
        add_conv_bn_us(p, f"conv1_{k}", f"conv1_{k}_bn", cout, cin, 3, stats=stats)
        cin = cout
    for s, (count, nf) in enumerate(zip(depth_blocks, widths)):
        for i in range(count):
            name = f"{first_number + s}_{i + 1}"
            add_conv_bn_us(p, f"conv{name}_x1", f"conv{name}_x1_bn", nf, cin, 1, stats=stats)
            add_conv_bn_us(p, f"conv{name}_x2", f"conv{name}_x2_bn", nf, nf, 3, groups=groups, stats=stats)
            add_conv_bn_us(p, f"conv{name}_x3", f"conv{name}_x3_bn", nf, nf, 1, stats=stats)
            p[f"fc{name}_sqz_weights"] = rand(nf, nf // 16)  # fc weights are [in, out]
            p[f"fc{name}_sqz_offset"] = rand(nf // 16)
            p[f"fc{name}_exc_weights"] = rand(nf // 16, nf)
            p[f"fc{name}_exc_offset"] = rand(nf)
            if i == 0:
                add_conv_bn_us(p, f"conv{name}_prj", f"conv{name}_prj_bn", nf, cin, 1, stats=stats)
            cin = nf
    return p


def test_senet154_names_map_onto_the_backbone():
    from detzoo.models.backbones import SENet

    params = paddle_senet()
    params["fc6_weights"], params["fc6_offset"] = rand(256, 10), rand(10)  # ImageNet classifier
    state = pss.convert_senet_backbone(params)
    # a narrow SENet-154 with Paddle's layout: conv widths == output widths (32 .. 256), 8 groups
    net = SENet(depth=152, groups=8, base_width=4, base_channels=8, stem_channels=16).eval()
    strict_load(net, state)
    sd = net.state_dict()
    assert torch.equal(sd["layer3.35.se.squeeze.weight"], torch.from_numpy(params["fc6_36_sqz_weights"].T.copy()))
    assert torch.equal(sd["layer4.0.downsample.1.weight"], torch.from_numpy(params["conv7_1_prj_weights"]))
    assert torch.equal(sd["layer1.0.downsample.0.weight"], torch.from_numpy(params["conv4_1_prj_weights"]))
    assert torch.equal(sd["stem.7.running_var"], torch.from_numpy(params["conv1_3_bn_variance"]))
    assert torch.equal(sd["layer2.7.bn2.bias"], torch.from_numpy(params["conv5_8_x2_bn_offset"]))
    # the SE of one block against Paddle's formula on the Paddle arrays (fc: x @ W + b)
    x = torch.randn(2, 64, 3, 3)
    pooled = x.mean((2, 3)).numpy()
    hidden = np.maximum(pooled @ params["fc5_2_sqz_weights"] + params["fc5_2_sqz_offset"], 0)
    gate = 1 / (1 + np.exp(-(hidden @ params["fc5_2_exc_weights"] + params["fc5_2_exc_offset"])))
    with torch.no_grad():
        got = net.layer2[1].se(x)
    torch.testing.assert_close(got, x * torch.from_numpy(gate.astype(np.float32))[:, :, None, None])


def test_senet_affine_channel_norms_become_identity_statistics():
    """Detection rows use affine_channel: scale/offset only -> mean 0, variance 1 (FrozenBN eps 0)."""
    params = paddle_senet(depth_blocks=(3, 8, 36, 3), stats=False)
    state = pss.convert_senet_backbone(params)
    assert torch.count_nonzero(state["layer1.0.bn1.running_mean"]) == 0
    assert torch.all(state["layer1.0.bn1.running_var"] == 1)
    assert torch.equal(state["layer1.0.bn1.weight"], torch.from_numpy(params["conv4_1_x1_bn_scale"]))


def test_rcnn_se154_arch_is_detected_by_names():
    names = {"conv4_1_x1_weights", "fpn_res5_sum_w", "fc6_w", "mask_fcn_logits_w"}
    assert pss.detect_arch(names) == "mask_rcnn_se154_vd_fpn"
    assert pss.detect_arch(names - {"mask_fcn_logits_w"}) == "faster_rcnn_se154_vd_fpn"


def test_every_arch_names_an_existing_config():
    from detzoo.zoo.configs import configs_root

    assert set(pss.ARCH_CONFIGS) == set(pss.ARCHS)
    for arch, config in pss.ARCH_CONFIGS.items():
        assert (configs_root() / config).is_file(), (arch, config)


def test_paddle_single_stage_rows_are_buildable():
    """Every Paddle YOLOv3 / SSD row of the zoo has a config (the mappings above load into them)."""
    from detzoo.zoo.index import load_index

    rows = [e for e in load_index() if e.source == "PaddleDetection" and e.method in ("YOLOv3", "SSD")]
    assert len(rows) == 19  # 9 COCO YOLOv3 + 9 VOC YOLOv3 + 1 SSD (seed page)
    assert all(e.config_path is not None for e in rows), [e.name for e in rows if e.config_path is None]
    stems = {e.checkpoint_stem for e in rows}
    assert stems == {"yolov3_darknet", "yolov3_mobilenet_v1", "yolov3_r34", "yolov3_darknet_voc",
                     "yolov3_mobilenet_v1_voc", "yolov3_r34_voc", "ssd_mobilenet_v1_voc"}
    arch_of_stem = {"yolov3_darknet": "yolov3_darknet53_coco", "yolov3_darknet_voc": "yolov3_darknet53_voc",
                    "yolov3_mobilenet_v1": "yolov3_mobilenet_v1_coco",
                    "yolov3_mobilenet_v1_voc": "yolov3_mobilenet_v1_voc", "yolov3_r34": "yolov3_r34_coco",
                    "yolov3_r34_voc": "yolov3_r34_voc", "ssd_mobilenet_v1_voc": "ssd_mobilenet_v1_voc"}
    for e in rows:  # each checkpoint's rows use the config its mapping targets
        assert e.config == pss.ARCH_CONFIGS[arch_of_stem[e.checkpoint_stem]], e.name


# --- end to end: a Paddle .tar archive through `detzoo convert`'s converter ------------------
def _paddle_layout():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("_paddle_layout", Path(__file__).with_name("paddle_layout.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_convert_file_detects_a_voc_yolov3_archive_and_names_its_config(tmp_path):
    from detzoo.engine.checkpoint import load_model_weights
    from detzoo.zoo.converters import convert_file

    params, channels = paddle_mobilenet()
    add_yolo_head(params, channels, 20)
    src = tmp_path / "yolov3_mobilenet_v1_voc.tar"
    _paddle_layout().write_tar(src, params)
    converted = convert_file(src, "paddle")
    assert converted["meta"]["paddle_arch"] == "yolov3_mobilenet_v1_voc"
    assert converted["meta"]["config"] == "yolo/yolov3_mobilenet_v1_voc.py"
    model = build("configs/" + converted["meta"]["config"])
    load_model_weights(model, converted, strict=True)
    assert torch.equal(model.bbox_head.convs_pred[2].bias, torch.from_numpy(params["yolo_output.2.conv.bias"]))


def test_convert_file_maps_a_senet_faster_rcnn_archive(tmp_path):
    """faster_rcnn_se154_vd_fpn_s1x's layout (SENet-154-vd names, affine_channel norms, FPN,
    RPN, 81-way head) at narrow backbone widths, loaded strictly into the row's config with the
    same narrowing."""
    from detzoo.engine.checkpoint import load_model_weights
    from detzoo.zoo.converters import convert_file

    layout = _paddle_layout()
    params = paddle_senet(stats=False)
    shapes = OrderedDict()
    shapes.update(layout.fpn_layout(channels=(32, 64, 128, 256)))
    shapes.update(layout.rpn_layout())
    shapes.update(layout.rcnn_head_layout())
    params.update(layout.random_params(shapes, seed=1))
    src = tmp_path / "faster_rcnn_se154_vd_fpn_s1x.tar"
    layout.write_tar(src, params)
    converted = convert_file(src, "paddle")
    assert converted["meta"]["paddle_arch"] == "faster_rcnn_se154_vd_fpn"
    cfg = load_config("configs/" + converted["meta"]["config"])
    cfg["model"]["backbone"].update(groups=8, base_channels=8, stem_channels=16)
    cfg["model"]["neck"]["in_channels"] = [32, 64, 128, 256]
    model = build_detector(cfg["model"])
    load_model_weights(model, converted, strict=True)
    block = model.backbone.layer3[35]
    assert torch.equal(block.se.squeeze.weight, torch.from_numpy(params["fc6_36_sqz_weights"].T.copy()))
    assert torch.equal(block.bn3.weight, torch.from_numpy(params["conv6_36_x3_bn_scale"]))
    assert torch.count_nonzero(block.bn3.running_mean) == 0 and torch.all(block.bn3.running_var == 1)


def test_init_detector_from_the_zoo_downloads_and_converts_a_paddle_row(file_server, zoo_home, monkeypatch):
    """`init_detector(NAME, checkpoint="zoo")` on a Paddle row: download (from a local mirror of
    paddlemodels.bj.bcebos.com), convert once, cache the converted file, load strictly."""
    from detzoo.apis import init_detector
    from detzoo.zoo.index import get_entry

    entry = get_entry("yolov3_mobilenet_v1_voc_416")
    assert entry.status == "loadable"
    params, channels = paddle_mobilenet()
    add_yolo_head(params, channels, 20)
    served = file_server.root / "object_detection" / "yolov3_mobilenet_v1_voc.tar"
    served.parent.mkdir(parents=True)
    _paddle_layout().write_tar(served, params)
    monkeypatch.setenv("DETZOO_ZOO_MIRROR", file_server.base)
    model = init_detector("yolov3_mobilenet_v1_voc_416", checkpoint="zoo")
    assert torch.equal(model.bbox_head.convs_pred[2].bias, torch.from_numpy(params["yolo_output.2.conv.bias"]))
    converted = list(zoo_home.rglob("yolov3_mobilenet_v1_voc.detzoo.pth"))
    assert len(converted) == 1 and not list(zoo_home.rglob("*.tmp"))
    # a second load uses the cache: no new request, no re-conversion
    stamp = converted[0].stat().st_mtime_ns
    init_detector("yolov3_mobilenet_v1_voc_608", checkpoint="zoo")
    assert len(file_server.requests) == 1 and converted[0].stat().st_mtime_ns == stamp
