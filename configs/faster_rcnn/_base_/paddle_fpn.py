"""What the PaddleDetection (static / 0.x) FPN rows share: Faster, Mask and Cascade R-CNN and
RetinaNet with ResNet(-vd) / ResNeXt-vd backbones (seed: PaddleDetection's model zoo page; nets
from its ``static/configs/*_fpn_*.yml`` and ``static/ppdet/modeling``). Weights: convert the
published ``.tar`` with ``detzoo convert X.tar X.pth --from paddle`` (docs/convert.md).

Same architecture as Paddle's, so converted weights load strictly:
- backbone ``norm_type: affine_channel`` (frozen ``x * scale + offset``) -> FrozenBN with mean 0,
  var 1 and ``eps=0`` (exact); ``freeze_at: 2`` -> frozen_stages 1; variant 'b' (stride on the
  3x3, detzoo style "pytorch") or 'd' (vd: deep 3x3 stem + avg-pool shortcuts, ``deep_stem`` +
  ``avg_down``); ResNeXt-vd 64x4d: groups 64, base width 4;
- FPN 256 channels, P6 max-pool (R-CNN) or P6/P7 convs on C5 (RetinaNet); shared RPN conv with
  3 anchors per level (32..512, ratios 0.5/1/2); TwoFCHead 1024; 81-way softmax (converted to
  80 + background last); mask head 4 convs + deconv at 14x14; RetinaNet 4+4 convs, 9 anchors.
Paddle settings reproduced where they differ from MMDetection's:
- preprocessing: RGB, ``(x / 255 - mean) / std`` with ImageNet mean/std, normalised BEFORE the
  resize (Paddle's NormalizeImage precedes ResizeImage), so the resize runs on float pixels;
  short side 800, long side at most 1333, cv2 linear; pad to a multiple of 32;
- RoIAlign ``sampling_ratio=2`` and no half-pixel shift (fluid roi_align, ``aligned=False``).
Not reproduced (MMDetection 2.x behaviour kept, so boxes differ slightly from Paddle's):
- Paddle's Detectron-1 box maths: +1 in box widths (anchors, ``box_coder``, RoI level
  assignment, ``box_clip`` to ``size - 1``) and anchors centred at ``(stride - 1) / 2``;
- one isotropic ``im_scale`` per image (Paddle) vs separate w/h scale factors; Paddle's long-side
  test rounds before comparing with 1333;
- FPN top-down ``resize_nearest`` with ``align_corners`` (Paddle) vs plain nearest;
- Cascade test: Paddle averages the softmax of all three classifiers on the stage-3 RoIs; detzoo
  averages as MMDetection does.
"""
from detzoo.data.norm_presets import get_norm_cfg
from detzoo.data.transforms import (Collect, DefaultFormatBundle, LoadAnnotations, LoadImageFromFile,
                                    MultiScaleFlipAug, Normalize, Pad, RandomFlip, Resize)
from detzoo.models.backbones import ResNet, ResNeXt
from detzoo.ops import RoIAlign

img_norm_cfg = get_norm_cfg("paddle")  # RGB, ImageNet mean/std in 0..255 units
paddle_norm_cfg = dict(type="FrozenBN", eps=0.0, requires_grad=False)  # affine_channel


def paddle_backbone(depth=50, vd=False, groups=None, out_indices=(0, 1, 2, 3)):
    """Paddle's ResNet ('b') / ResNet-vd / ResNeXt-vd ``groups``x4d backbone."""
    backbone = dict(type=ResNet, depth=depth, num_stages=4, out_indices=out_indices, frozen_stages=1,
                    norm_cfg=dict(paddle_norm_cfg), norm_eval=True, style="pytorch",
                    deep_stem=vd, avg_down=vd)
    if groups:
        backbone.update(type=ResNeXt, groups=groups, base_width=4)
    backbone["init_cfg"] = dict(type="Pretrained", checkpoint=paddle_imagenet_weights(depth, vd, groups))
    return backbone


def paddle_imagenet_weights(depth=50, vd=False, groups=None):
    """The ImageNet archive (its zoo name: the file stem) that PaddleDetection's static configs give
    as ``pretrain_weights`` for this backbone (ResNet-50 'b': the cosine-schedule one)."""
    if groups:
        return f"ResNeXt{depth}_vd_{groups}x4d_pretrained" if vd else f"ResNeXt{depth}_{groups}x4d_pretrained"
    if vd:
        return f"ResNet{depth}_vd_pretrained"
    return "ResNet50_cos_pretrained" if depth == 50 else f"ResNet{depth}_pretrained"


def _paddle_roi_align(node):
    if isinstance(node, dict):
        if node.get("type") is RoIAlign:
            node.update(sampling_ratio=2, aligned=False)
        for value in node.values():
            _paddle_roi_align(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _paddle_roi_align(value)


def paddle_pipelines(with_mask=False):
    """(train_pipeline, test_pipeline) in Paddle's order: normalise, then resize."""
    keys = ["img", "gt_bboxes", "gt_labels", "gt_bboxes_ignore"] + (["gt_masks"] if with_mask else [])
    train = [
        dict(type=LoadImageFromFile),
        dict(type=LoadAnnotations, with_bbox=True, with_mask=with_mask),
        dict(type=Normalize, **img_norm_cfg),
        dict(type=Resize, img_scale=(1333, 800), keep_ratio=True),
        dict(type=RandomFlip, flip_ratio=0.5),
        dict(type=Pad, size_divisor=32),
        dict(type=DefaultFormatBundle),
        dict(type=Collect, keys=keys),
    ]
    test = [
        dict(type=LoadImageFromFile),
        dict(type=MultiScaleFlipAug, img_scale=(1333, 800), flip=False, transforms=[
            dict(type=Normalize, **img_norm_cfg),
            dict(type=Resize, keep_ratio=True),
            dict(type=RandomFlip),
            dict(type=Pad, size_divisor=32),
            dict(type=DefaultFormatBundle),
            dict(type=Collect, keys=["img"]),
        ]),
    ]
    return train, test


def to_paddle(model, data, depth=50, vd=False, groups=None, with_mask=False):
    """Turn an MMDetection-style model/data config into PaddleDetection's variant (in place)."""
    out_indices = model["backbone"].get("out_indices", (0, 1, 2, 3))
    model["backbone"] = paddle_backbone(depth, vd, groups, out_indices)
    _paddle_roi_align(model.get("roi_head"))
    train, test = paddle_pipelines(with_mask)
    data["train"]["pipeline"] = train
    data["val"]["pipeline"] = test
    data["test"]["pipeline"] = test
    return model
