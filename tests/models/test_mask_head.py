"""FCNMaskHead: MMDetection checkpoint layout, forward against plain torch ops, targets, loss and
pasting against hand-worked values."""
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from detzoo.errors import ConfigError, DataError
from detzoo.models.losses import CrossEntropyLoss
from detzoo.models.roi_heads.mask_heads import FCNMaskHead

from shared_paths import layout_dir, layout_fingerprint

# pycocotools' decode warns under numpy 2 (its own code, not ours)
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

PREFIX = "roi_head.mask_head."
# layout_fingerprint of the mask_head.* entries of mask-rcnn_r50_fpn_1x_coco.json (mmdet 3.3.0),
# prefix removed: checks the layout where shared/ is not available.
MASK_HEAD_FINGERPRINT = "16a808bef17f1f6f382c1d7900e81b575363ff5f208fa1a3dfd959185949761c"


def test_state_dict_matches_mmdetection_mask_rcnn_layout():
    mine = {k: tuple(v.shape) for k, v in FCNMaskHead(num_classes=80).state_dict().items()}
    assert layout_fingerprint(mine.items()) == MASK_HEAD_FINGERPRINT
    folder = layout_dir()
    if folder is not None and (folder / "mask-rcnn_r50_fpn_1x_coco.json").is_file():
        layout = json.loads((folder / "mask-rcnn_r50_fpn_1x_coco.json").read_text())["layout"]
        ref = {k[len(PREFIX):]: tuple(s) for k, s in layout if k.startswith(PREFIX)}
        assert mine == ref


def small_head(**kwargs):
    torch.manual_seed(0)
    return FCNMaskHead(num_classes=3, num_convs=2, in_channels=4, conv_out_channels=5, **kwargs)


def test_forward_equals_plain_conv_relu_deconv_stack():
    head = small_head()
    x = torch.randn(6, 4, 14, 14)
    ref = x
    for conv in head.convs:
        ref = F.relu(F.conv2d(ref, conv.conv.weight, conv.conv.bias, padding=1))
    ref = F.relu(F.conv_transpose2d(ref, head.upsample.weight, head.upsample.bias, stride=2))
    ref = F.conv2d(ref, head.conv_logits.weight, head.conv_logits.bias)
    out = head(x)
    assert out.shape == (6, 3, 28, 28)
    torch.testing.assert_close(out, ref)


def test_upsample_variants_and_class_agnostic_shapes():
    x = torch.randn(2, 4, 14, 14)
    assert small_head(upsample_cfg=None)(x).shape == (2, 3, 14, 14)
    nearest = small_head(upsample_cfg=dict(type="nearest", scale_factor=2), class_agnostic=True)
    assert nearest(x).shape == (2, 1, 28, 28) and not hasattr(nearest.upsample, "weight")
    with pytest.raises(ConfigError, match="carafe"):
        small_head(upsample_cfg=dict(type="carafe", scale_factor=2))


def test_init_is_kaiming_fan_out_with_zero_bias():
    head = FCNMaskHead(num_classes=80)
    # ConvTranspose2d weight [in, out, 2, 2]: torch's fan_out is dim 0 * 4 = 1024; std sqrt(2 / 1024)
    assert abs(head.upsample.weight.std().item() - (2 / 1024) ** 0.5) < 0.003
    assert abs(head.conv_logits.weight.std().item() - (2 / 80) ** 0.5) < 0.01
    assert head.upsample.bias.abs().sum() == 0 and head.conv_logits.bias.abs().sum() == 0


def test_loss_is_bce_on_the_label_channel():
    head = small_head()
    logits = torch.randn(4, 3, 28, 28, requires_grad=True)
    targets = (torch.rand(4, 28, 28) > 0.5).float()
    labels = torch.tensor([2, 0, 1, 2])
    loss = head.loss(logits, targets, labels)["loss_mask"]
    chosen = torch.stack([logits[i, labels[i]] for i in range(4)])
    expected = F.binary_cross_entropy(chosen.sigmoid(), targets)
    torch.testing.assert_close(loss, expected, atol=1e-5, rtol=1e-5)
    loss.backward()
    assert logits.grad[0, 0].abs().sum() == 0 and logits.grad[0, 2].abs().sum() > 0
    agnostic = small_head(class_agnostic=True)
    one_channel = logits.detach()[:, :1]
    torch.testing.assert_close(agnostic.loss(one_channel, targets, labels)["loss_mask"],
                               F.binary_cross_entropy(one_channel[:, 0].sigmoid(), targets), atol=1e-5, rtol=1e-5)


def test_loss_weight_and_empty_batch():
    head = small_head(loss_mask=dict(type=CrossEntropyLoss, use_mask=True, loss_weight=2.5))
    logits, targets = torch.zeros(2, 3, 28, 28), torch.ones(2, 28, 28)
    # logit 0 everywhere: BCE = log 2
    torch.testing.assert_close(head.loss(logits, targets, torch.tensor([0, 1]))["loss_mask"],
                               torch.tensor(2.5 * np.log(2), dtype=torch.float32))
    empty = torch.zeros(0, 3, 28, 28, requires_grad=True)
    loss = head.loss(empty, torch.zeros(0, 28, 28), torch.zeros(0, dtype=torch.long))["loss_mask"]
    assert loss.item() == 0
    loss.backward()
    assert empty.grad is not None and empty.grad.shape == empty.shape


def test_mask_loss_refuses_class_weight():
    with pytest.raises(ConfigError, match="class_weight"):
        CrossEntropyLoss(use_mask=True, class_weight=[1.0, 2.0])


def sample(boxes, gt_inds):
    return SimpleNamespace(pos_bboxes=torch.tensor(boxes, dtype=torch.float32),
                           pos_assigned_gt_inds=torch.tensor(gt_inds, dtype=torch.long))


def test_get_targets_bitmaps_and_polygons_in_sample_order():
    masks = torch.zeros(2, 32, 32, dtype=torch.uint8)
    masks[0, 8:24, 8:24] = 1                    # a square
    masks[1, :, :16] = 1                        # the left half
    polygons = [[np.array([4, 4, 12, 4, 12, 12, 4, 12], dtype=np.float32)]]
    samples = [sample([[8, 8, 24, 24], [0, 0, 32, 32], [-10, -10, 40, 40]], [0, 1, 1]),
               sample([[4, 4, 12, 12], [0, 0, 8, 8]], [0, 0]),
               sample(np.zeros((0, 4)), [])]
    targets = FCNMaskHead(num_classes=2).get_targets(samples, [masks, polygons, masks[:0]], 28)
    assert targets.shape == (5, 28, 28) and targets.dtype == torch.float32
    left = torch.zeros(28, 28)
    # box [0, 32] over the half-mask: bin 13 samples x = 14.64, 15.21 (mean 0.89), bin 14 samples
    # 15.79, 16.36 (mean 0.11), so 14 columns are set
    left[:, :14] = 1
    quadrant = torch.zeros(28, 28)
    quadrant[14:, 14:] = 1
    expected = torch.stack([torch.ones(28, 28), left, left, torch.ones(28, 28), quadrant])
    # the third box is clipped to the 32 x 32 mask first (MMDetection's mask_target), so it
    # gives the same target as the second
    assert torch.equal(targets, expected)


def test_get_targets_rejects_an_index_past_the_masks():
    with pytest.raises(DataError, match="image #0"):
        FCNMaskHead(num_classes=2).get_targets([sample([[0, 0, 4, 4]], [3])],
                                               [torch.zeros(2, 8, 8, dtype=torch.uint8)], 28)


def test_mask_probs_paste_and_predict():
    head = FCNMaskHead(num_classes=3, num_convs=0, in_channels=2)
    logits = torch.full((2, 3, 2, 2), -20.0)
    logits[0, 1] = 20.0                         # detection 0 has label 1: a full mask
    logits[1, 0] = 20.0                         # detection 1 (label 2) reads channel 2: empty
    labels = torch.tensor([1, 2])
    probs = head.mask_probs(logits, labels)
    torch.testing.assert_close(probs[0], torch.ones(2, 2))
    torch.testing.assert_close(probs[1], torch.zeros(2, 2))
    agnostic = FCNMaskHead(num_classes=3, num_convs=0, in_channels=2, class_agnostic=True)
    torch.testing.assert_close(agnostic.mask_probs(logits[:, :1], labels), torch.sigmoid(logits[:, 0]))
    boxes = torch.tensor([[2.0, 2.0, 6.0, 6.0], [0.0, 0.0, 9.0, 9.0]])
    meta = {"ori_shape": (10, 12, 3), "img_shape": (20, 24, 3)}
    masks = head.predict(logits, boxes, labels, meta, mask_thr_binary=0.5, rescale=True)
    expected = torch.zeros(2, 10, 12, dtype=torch.bool)
    expected[0, 2:6, 2:6] = True                # see test_paste_hand_worked_constant_mask
    assert masks.dtype == torch.bool and torch.equal(masks, expected)
    assert head.predict(logits, boxes, labels, meta, rescale=False).shape == (2, 20, 24)
    soft = head.paste(probs, boxes, meta, mask_thr_binary=-1, rescale=True)
    assert soft.dtype == torch.float32 and abs(soft[0, 2, 2].item() - 0.5625) < 1e-5
    none = head.predict(logits[:0], boxes[:0], labels[:0], meta)
    assert none.shape == (0, 10, 12) and none.dtype == torch.bool
