"""C4 R-CNNs (res4 features, res5 as the shared RoI head): MMDetection's checkpoint layout, the
shared head's wiring (box and mask branches) and a tiny model that trains and predicts."""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from detzoo.config import load_config
from detzoo.models.builder import build_detector
from detzoo.models.roi_heads import BBoxHead, ResLayer, boxes_to_rois
from detzoo.models.task_modules import DeltaXYWHBBoxCoder
from detzoo.models.losses import CrossEntropyLoss, L1Loss


# --- MMDetection's layout, written from its config facts ------------------------------------
def _bn(out, key, channels):
    for name in ("weight", "bias", "running_mean", "running_var"):
        out[f"{key}.{name}"] = (channels,)
    out[f"{key}.num_batches_tracked"] = ()


def _bottleneck_stage(out, key, inplanes, planes, blocks):
    """mmdet ResLayer of Bottlenecks: conv1 1x1, conv2 3x3, conv3 1x1 (x4), downsample.{0,1}."""
    for i in range(blocks):
        cin = inplanes if i == 0 else planes * 4
        out[f"{key}.{i}.conv1.weight"] = (planes, cin, 1, 1)
        _bn(out, f"{key}.{i}.bn1", planes)
        out[f"{key}.{i}.conv2.weight"] = (planes, planes, 3, 3)
        _bn(out, f"{key}.{i}.bn2", planes)
        out[f"{key}.{i}.conv3.weight"] = (planes * 4, planes, 1, 1)
        _bn(out, f"{key}.{i}.bn3", planes * 4)
        if i == 0:
            out[f"{key}.{i}.downsample.0.weight"] = (planes * 4, cin, 1, 1)
            _bn(out, f"{key}.{i}.downsample.1", planes * 4)


def mmdet_faster_rcnn_r50_c4_layout():
    """configs/_base_/models/faster_rcnn_r50_caffe_c4.py: ResNet-50 num_stages=3, RPNHead(1024,
    1024, 5 scales x 3 ratios), ResLayer(depth=50, stage=3) shared head, BBoxHead(with_avg_pool,
    in_channels=2048, 80 classes, class-specific regression)."""
    out = {"backbone.conv1.weight": (64, 3, 7, 7)}
    _bn(out, "backbone.bn1", 64)
    for layer, (inplanes, planes, blocks) in enumerate(((64, 64, 3), (256, 128, 4), (512, 256, 6)), start=1):
        _bottleneck_stage(out, f"backbone.layer{layer}", inplanes, planes, blocks)
    out.update({"rpn_head.rpn_conv.weight": (1024, 1024, 3, 3), "rpn_head.rpn_conv.bias": (1024,),
                "rpn_head.rpn_cls.weight": (15, 1024, 1, 1), "rpn_head.rpn_cls.bias": (15,),
                "rpn_head.rpn_reg.weight": (60, 1024, 1, 1), "rpn_head.rpn_reg.bias": (60,)})
    _bottleneck_stage(out, "roi_head.shared_head.layer4", 1024, 512, 3)
    out.update({"roi_head.bbox_head.fc_cls.weight": (81, 2048), "roi_head.bbox_head.fc_cls.bias": (81,),
                "roi_head.bbox_head.fc_reg.weight": (320, 2048), "roi_head.bbox_head.fc_reg.bias": (320,)})
    return out


@pytest.fixture(scope="module")
def faster_c4():
    return build_detector(load_config("faster_rcnn_r50_caffe_c4_1x_coco")["model"])


def test_faster_rcnn_c4_state_dict_is_mmdetections(faster_c4):
    ours = {k: tuple(v.shape) for k, v in faster_c4.state_dict().items()}
    expected = mmdet_faster_rcnn_r50_c4_layout()
    assert sorted(set(expected) - set(ours)) == [] and sorted(set(ours) - set(expected)) == []
    assert ours == expected
    # MMDetection's published checkpoint names, verbatim
    assert "roi_head.shared_head.layer4.0.conv1.weight" in ours and "roi_head.bbox_head.fc_cls.weight" in ours
    # a strict load of a state dict in that layout works (what loading the published .pth does)
    faster_c4.load_state_dict({k: torch.zeros(s) for k, s in expected.items()}, strict=True)
    faster_c4.load_state_dict(build_detector(load_config("faster_rcnn_r50_caffe_c4_1x_coco")["model"]).state_dict())


def test_faster_rcnn_c4_caffe_geometry(faster_c4):
    # caffe style: the stride sits on the first 1x1 conv of res5's first block; 14x14 -> 7x7
    block = faster_c4.roi_head.shared_head.layer4[0]
    assert block.conv1.stride == (2, 2) and block.conv2.stride == (1, 1)
    assert faster_c4.roi_head.bbox_roi_extractor.output_size == (14, 14)
    assert faster_c4.roi_head.bbox_roi_extractor.featmap_strides == [16]
    faster_c4.eval()
    with torch.no_grad():
        feats = faster_c4.extract_feat(torch.zeros(1, 3, 64, 96))
        assert [tuple(f.shape) for f in feats] == [(1, 1024, 4, 6)]
        assert tuple(faster_c4.roi_head.shared_head(torch.zeros(2, 1024, 14, 14)).shape) == (2, 2048, 7, 7)


def test_mask_rcnn_c4_adds_only_the_convless_mask_head(faster_c4):
    model = build_detector(load_config("mask_rcnn_r50_caffe_c4_1x_coco")["model"])
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    expected = mmdet_faster_rcnn_r50_c4_layout()
    expected.update({"roi_head.mask_head.upsample.weight": (2048, 256, 2, 2),  # ConvTranspose [in, out]
                     "roi_head.mask_head.upsample.bias": (256,),
                     "roi_head.mask_head.conv_logits.weight": (80, 256, 1, 1),
                     "roi_head.mask_head.conv_logits.bias": (80,)})
    assert ours == expected
    assert model.roi_head.mask_roi_extractor is model.roi_head.bbox_roi_extractor
    assert model.roi_head.train_cfg["mask_size"] == 14


def test_bbox_head_with_avg_pool_is_mean_then_linear():
    torch.manual_seed(0)
    coder = dict(type=DeltaXYWHBBoxCoder, target_means=[0.0] * 4, target_stds=[0.1, 0.1, 0.2, 0.2])
    head = BBoxHead(num_classes=3, bbox_coder=coder, loss_cls=dict(type=CrossEntropyLoss),
                    loss_bbox=dict(type=L1Loss), in_channels=5, roi_feat_size=7, with_avg_pool=True)
    assert tuple(head.fc_cls.weight.shape) == (4, 5) and tuple(head.fc_reg.weight.shape) == (12, 5)
    x = torch.randn(2, 5, 7, 7, dtype=torch.float64)
    head = head.double()
    cls, reg = head(x)
    pooled = x.numpy().reshape(2, 5, 49).sum(axis=2) / 49.0
    w, b = head.fc_cls.weight.detach().numpy(), head.fc_cls.bias.detach().numpy()
    np.testing.assert_allclose(cls.detach().numpy(), pooled @ w.T + b, rtol=1e-12, atol=1e-12)
    w, b = head.fc_reg.weight.detach().numpy(), head.fc_reg.bias.detach().numpy()
    np.testing.assert_allclose(reg.detach().numpy(), pooled @ w.T + b, rtol=1e-12, atol=1e-12)


def test_res_layer_keys_and_vd_shortcut():
    plain = ResLayer(depth=50, stage=3, style="pytorch")
    assert plain.layer4[0].conv2.stride == (2, 2) and plain.layer4[0].conv1.stride == (1, 1)
    vd = ResLayer(depth=50, stage=3, avg_down=True)
    keys = {k for k in vd.state_dict() if ".downsample." in k}
    assert "layer4.0.downsample.1.weight" in keys and "layer4.0.downsample.2.weight" in keys
    assert isinstance(vd.layer4[0].downsample[0], torch.nn.AvgPool2d)
    assert len([k for k in ResLayer(depth=101).state_dict() if k.endswith("conv1.weight")]) == 3
    with pytest.raises(Exception, match="depth"):
        ResLayer(depth=42)
    with pytest.raises(Exception, match="stage"):
        ResLayer(depth=50, stage=4)
    # norm_eval: BatchNorms stay in eval mode when the head trains
    plain.train()
    assert not plain.layer4[0].bn1.training


# --- a tiny C4 model -----------------------------------------------------------------------
def tiny_c4_cfg(with_mask=False):
    """The MMDetection C4 config shrunk: ResNet-18 with 8 base channels (res4: 32 ch), res5 head
    32 -> 64 channels, 3 classes, few proposals and RoIs."""
    name = "mask_rcnn_r50_caffe_c4_1x_coco" if with_mask else "faster_rcnn_r50_caffe_c4_1x_coco"
    model = copy.deepcopy(load_config(name)["model"])
    model["backbone"].update(depth=18, base_channels=8, stem_channels=8)
    model["rpn_head"].update(in_channels=32, feat_channels=32)
    model["roi_head"]["shared_head"].update(depth=18, base_channels=8)
    model["roi_head"]["bbox_roi_extractor"]["out_channels"] = 32
    model["roi_head"]["bbox_head"].update(in_channels=64, num_classes=3)
    if with_mask:
        model["roi_head"]["mask_head"].update(in_channels=64, conv_out_channels=16, num_classes=3)
    model["train_cfg"]["rpn_proposal"].update(nms_pre=300, max_per_img=60)
    model["train_cfg"]["rcnn"]["sampler"]["num"] = 32
    model["test_cfg"]["rpn"].update(nms_pre=300, max_per_img=50)
    return model


def synthetic_batch(with_mask=False):
    """One 128x160 image (already 'resized' by 0.5) with two bright rectangles on dark."""
    h, w = 128, 160
    boxes = torch.tensor([[20.0, 24.0, 84.0, 100.0], [96.0, 16.0, 150.0, 60.0]])
    img = torch.full((1, 3, h, w), -1.0)
    masks = torch.zeros(2, h, w, dtype=torch.uint8)
    for i, (x1, y1, x2, y2) in enumerate(boxes.long().tolist()):
        img[0, i, y1:y2, x1:x2] = 1.0
        masks[i, y1:y2, x1:x2] = 1
    meta = dict(filename="synthetic.png", img_id=1, ori_shape=(2 * h, 2 * w, 3), img_shape=(h, w, 3),
                pad_shape=(h, w, 3), scale_factor=np.full(4, 0.5, np.float32), flip=False, flip_direction=None)
    batch = {"img": img, "img_metas": [meta], "gt_bboxes": [boxes], "gt_labels": [torch.tensor([0, 2])],
             "gt_bboxes_ignore": [torch.zeros(0, 4)]}
    if with_mask:
        batch["gt_masks"] = [masks]
    return batch


def _train(model, batch, steps):
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    history = []
    model.train()
    for _ in range(steps):
        losses = model.loss(batch)
        total = sum(v for k, v in losses.items() if "loss" in k)
        opt.zero_grad()
        total.backward()
        opt.step()
        history.append({k: float(v.detach()) for k, v in losses.items()})
    return history


def test_tiny_faster_rcnn_c4_trains_and_predicts():
    torch.manual_seed(0)
    model = build_detector(tiny_c4_cfg(), class_names=("a", "b", "c"))
    batch = synthetic_batch()
    history = _train(model, batch, 15)
    assert set(history[0]) >= {"loss_rpn_cls", "loss_rpn_bbox", "loss_cls", "loss_bbox"}
    total = [sum(v for k, v in h.items() if "loss" in k) for h in history]
    assert all(np.isfinite(total))
    assert np.mean(total[-3:]) < 0.7 * np.mean(total[:3]), total
    model.eval()
    with torch.no_grad():
        (result,) = model.predict(batch["img"], batch["img_metas"], rescale=True)
    assert result.masks is None and len(result) <= 100
    if len(result):  # boxes are in the original (2x larger) image
        assert float(result.boxes[:, 2].max()) <= 320.0 + 1e-3 and float(result.boxes[:, 3].max()) <= 256.0 + 1e-3
        assert set(result.labels.tolist()) <= {0, 1, 2}


def test_mask_c4_trains_on_the_box_branchs_res5_features():
    torch.manual_seed(0)
    model = build_detector(tiny_c4_cfg(with_mask=True), class_names=("a", "b", "c"))
    batch = synthetic_batch(with_mask=True)
    roi_head = model.roi_head
    seen = {}
    roi_head.mask_head.register_forward_hook(lambda mod, inp, out: seen.__setitem__("x", inp[0].detach()))
    sampled = {}
    original = roi_head.bbox_head.get_targets

    def spy(samples, *args, **kwargs):
        sampled["samples"] = samples
        return original(samples, *args, **kwargs)

    roi_head.bbox_head.get_targets = spy
    model.train()
    model.loss(batch)
    samples = sampled["samples"]
    pos_rois = boxes_to_rois([s.pos_bboxes for s in samples])
    assert pos_rois.shape[0] > 0
    # the mask head saw exactly res5(RoIAlign(res4, positive RoIs)): frozen norms make it repeatable
    with torch.no_grad():
        feats = model.extract_feat(batch["img"])
        expected = roi_head.shared_head(roi_head.bbox_roi_extractor(feats, pos_rois))
    assert tuple(seen["x"].shape) == (pos_rois.shape[0], 64, 7, 7)
    torch.testing.assert_close(seen["x"], expected, rtol=1e-5, atol=1e-5)

    roi_head.bbox_head.get_targets = original

    def gt_mask_loss():
        # the shapes fill their boxes, so the 14x14 target of each ground-truth box is all ones;
        # scored on fixed RoIs because the sampled positives (and so loss_mask) vary per step
        model.eval()
        with torch.no_grad():
            rois = boxes_to_rois(batch["gt_bboxes"])
            logits = roi_head.mask_head(roi_head.shared_head(roi_head.bbox_roi_extractor(
                model.extract_feat(batch["img"]), rois)))
            chosen = logits[torch.arange(2), batch["gt_labels"][0]]
        model.train()
        return float(F.binary_cross_entropy_with_logits(chosen, torch.ones_like(chosen)))

    before = gt_mask_loss()
    history = _train(model, batch, 20)
    assert all(np.isfinite(h["loss_mask"]) for h in history)
    after = gt_mask_loss()
    assert after < 0.5 * before, (before, after)
    model.eval()
    with torch.no_grad():
        (result,) = model.predict(batch["img"], batch["img_metas"], rescale=True)
    assert result.masks is not None and tuple(result.masks.shape) == (len(result), 256, 320)


def test_c4_test_path_scores_one_roi_through_res5_avgpool_fc():
    """simple_test's class scores for one proposal = softmax(fc_cls(mean(res5(RoIAlign(res4))))),
    computed here step by step from the modules' weights (convs with F.conv2d, norms by hand)."""
    torch.manual_seed(1)
    model = build_detector(tiny_c4_cfg(), class_names=("a", "b", "c")).eval()
    roi_head = model.roi_head
    img = torch.randn(1, 3, 64, 80)
    meta = dict(img_shape=(64, 80, 3), ori_shape=(64, 80, 3), pad_shape=(64, 80, 3),
                scale_factor=np.ones(4, np.float32))
    proposal = torch.tensor([[8.0, 6.0, 60.0, 50.0, 0.9]])
    captured = {}
    roi_head.bbox_head.register_forward_hook(lambda mod, inp, out: captured.__setitem__("cls", out[0].detach()))
    with torch.no_grad():
        feats = model.extract_feat(img)
        roi_head.simple_test(feats, [proposal], [meta], rescale=False)
        pooled = roi_head.bbox_roi_extractor(feats, boxes_to_rois([proposal]))

        def bn(x, norm):
            scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
            return x * scale[None, :, None, None] + (norm.bias - norm.running_mean * scale)[None, :, None, None]

        x = pooled
        for block in roi_head.shared_head.layer4:  # BasicBlocks: conv1 carries the stride
            out = F.relu(bn(F.conv2d(x, block.conv1.weight, stride=block.conv1.stride, padding=1), block.bn1))
            out = bn(F.conv2d(out, block.conv2.weight, padding=1), block.bn2)
            if block.downsample is not None:
                x = bn(F.conv2d(x, block.downsample[0].weight, stride=2), block.downsample[1])
            x = F.relu(out + x)
        vector = x.mean(dim=(2, 3))
        logits = vector @ roi_head.bbox_head.fc_cls.weight.T + roi_head.bbox_head.fc_cls.bias
    assert tuple(pooled.shape) == (1, 32, 14, 14) and tuple(x.shape) == (1, 64, 7, 7)
    torch.testing.assert_close(captured["cls"], logits, rtol=1e-4, atol=1e-5)
