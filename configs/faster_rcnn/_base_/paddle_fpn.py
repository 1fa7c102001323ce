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
  short side 800, long side at most 1333, cv2 linear; pad to a multiple of 32; at test time
  Paddle's ``ResizeImage`` itself (``PaddleResize``): one isotropic ``im_scale`` (the long side
  rounded before it is compared with 1333), ``im_info`` kept in the image metas;
- RoIAlign ``sampling_ratio=2`` and no half-pixel shift (fluid roi_align, ``aligned=False``);
- test-time box arithmetic of the Faster / Mask R-CNN rows (``paddle_numerics``, facts in
  detzoo/models/paddle_compat.py and docs/convert.md "Numerics"): Detectron-1 "+1" widths in
  anchors (``LegacyAnchorGenerator``: centres at ``(stride - 1) / 2``, Paddle's rounded
  ratio sizes), box coding (``LegacyDeltaXYWHBBoxCoder``), clipping to ``size - 1``, NMS IoUs
  and the RoI level assignment (``PaddleRoIExtractor``: refer level 4, scale 224); proposals
  per level as ``generate_proposals`` (top 1000, min-size filter, NMS 0.7, top 1000 per level,
  then the best 1000 of all levels); the R-CNN head decodes RoIs divided by ``im_scale`` in
  original-image pixels, clips to ``ori - 1`` and runs ``multiclass_nms`` (score > 0.05, NMS
  0.5 per class, keep 100).
Not reproduced (MMDetection 2.x behaviour kept, so boxes differ slightly from Paddle's):
- FPN top-down ``resize_nearest`` with ``align_corners`` (Paddle) vs plain nearest;
- RetinaNet: Paddle's anchors (ratio order 1, 2, 0.5 as in its yml, which is the order of the
  converted channels; +1 geometry), padding to a multiple of 128, and
  ``retinanet_detection_output`` (``PaddleRetinaHead``: +1 decode in original-image pixels,
  no score threshold on the last level, per-class NMS 0.5 with +1 IoUs, keep 100);
- Cascade R-CNN's heads keep MMDetection's box arithmetic (its RPN, RoI levels and resize are
  Paddle's); Cascade test: Paddle averages the softmax of all three classifiers on the stage-3
  RoIs; detzoo averages as MMDetection does; Mask R-CNN pastes masks as MMDetection does;
- training keeps MMDetection's targets, samplers and losses.
"""
from detzoo.data.norm_presets import get_norm_cfg
from detzoo.data.transforms import (Collect, DefaultFormatBundle, LoadAnnotations, LoadImageFromFile,
                                    MultiScaleFlipAug, Normalize, Pad, RandomFlip, Resize)
from detzoo.data.transforms.paddle_transform import PADDLE_META_KEYS, PaddleResize
from detzoo.models.backbones import ResNet, ResNeXt
from detzoo.models.dense_heads import RetinaHead, RPNHead
from detzoo.models.paddle_compat import (PaddleBBoxHead, PaddleRetinaHead, PaddleRoIExtractor, PaddleRPNHead,
                                         PaddleShared2FCBBoxHead)
from detzoo.models.roi_heads import BBoxHead, Shared2FCBBoxHead, SingleRoIExtractor
from detzoo.models.task_modules.anchors.legacy_anchor_generator import LegacyAnchorGenerator
from detzoo.models.task_modules.coders.legacy_delta_xywh_coder import LegacyDeltaXYWHBBoxCoder
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


def paddle_pipelines(with_mask=False, size_divisor=32):
    """(train_pipeline, test_pipeline) in Paddle's order: normalise, then resize; padded to a
    multiple of ``size_divisor`` (Paddle's PadBatch ``pad_to_stride``: 32, RetinaNet 128)."""
    keys = ["img", "gt_bboxes", "gt_labels", "gt_bboxes_ignore"] + (["gt_masks"] if with_mask else [])
    train = [
        dict(type=LoadImageFromFile),
        dict(type=LoadAnnotations, with_bbox=True, with_mask=with_mask),
        dict(type=Normalize, **img_norm_cfg),
        dict(type=Resize, img_scale=(1333, 800), keep_ratio=True),
        dict(type=RandomFlip, flip_ratio=0.5),
        dict(type=Pad, size_divisor=size_divisor),
        dict(type=DefaultFormatBundle),
        dict(type=Collect, keys=keys),
    ]
    test = [
        dict(type=LoadImageFromFile),
        dict(type=MultiScaleFlipAug, img_scale=(1333, 800), flip=False, transforms=[
            dict(type=Normalize, **img_norm_cfg),
            dict(type=PaddleResize),  # target 800 / max 1333 from img_scale
            dict(type=RandomFlip),
            dict(type=Pad, size_divisor=size_divisor),
            dict(type=DefaultFormatBundle),
            dict(type=Collect, keys=["img"], meta_keys=PADDLE_META_KEYS),
        ]),
    ]
    return train, test


def paddle_numerics(model, rpn_pre_nms_top_n=1000, rpn_post_nms_top_n=1000):
    """Switch a model config (in place) to Paddle's test-time box arithmetic: legacy anchors /
    coders, ``PaddleRPNHead`` proposals, ``PaddleRoIExtractor`` levels,
    ``PaddleShared2FCBBoxHead`` / ``PaddleBBoxHead`` / ``PaddleRetinaHead`` post-processing.
    Components of other types (Cascade's list of box heads) are left as they are."""
    retina = model.get("bbox_head")
    if isinstance(retina, dict) and retina.get("type") is RetinaHead:
        strides = retina["anchor_generator"]["strides"]
        retina.update(type=PaddleRetinaHead,
                      anchor_generator=dict(type=LegacyAnchorGenerator, strides=list(strides),
                                            ratios=[1.0, 2.0, 0.5], octave_base_scale=4, scales_per_octave=3,
                                            center_offset=0.5),
                      bbox_coder=dict(type=LegacyDeltaXYWHBBoxCoder, dwh_clamp="none"))
        model["test_cfg"] = dict(nms_pre=1000, score_thr=0.05, nms=dict(iou_threshold=0.5), max_per_img=100)
    rpn = model.get("rpn_head")
    if isinstance(rpn, dict) and rpn.get("type") is RPNHead:
        strides = rpn["anchor_generator"]["strides"]
        if len(strides) == 1:  # C4: one level, Paddle's RPNHead anchor_sizes
            sizes = [[32, 64, 128, 256, 512]]
        else:  # FPNRPNHead: anchor_start_size 32 doubling per level
            sizes = [[32 * 2 ** i] for i in range(len(strides))]
        rpn.update(type=PaddleRPNHead,
                   anchor_generator=dict(type=LegacyAnchorGenerator, strides=list(strides),
                                         ratios=[0.5, 1.0, 2.0], sizes=sizes, center_offset=0.5),
                   bbox_coder=dict(type=LegacyDeltaXYWHBBoxCoder, target_stds=[1.0, 1.0, 1.0, 1.0],
                                   dwh_clamp="upper"))
        model["test_cfg"]["rpn"] = dict(nms_pre=rpn_pre_nms_top_n, max_per_level=rpn_post_nms_top_n,
                                        max_per_img=rpn_post_nms_top_n, nms=dict(iou_threshold=0.7),
                                        min_bbox_size=0.0)
    roi_head = model.get("roi_head") or {}
    for key in ("bbox_roi_extractor", "mask_roi_extractor"):
        extractor = roi_head.get(key)
        if isinstance(extractor, dict) and extractor.get("type") is SingleRoIExtractor \
                and len(extractor["featmap_strides"]) > 1:
            extractor.update(type=PaddleRoIExtractor, refer_level=4, refer_scale=224)
    head = roi_head.get("bbox_head")
    paddle_heads = {Shared2FCBBoxHead: PaddleShared2FCBBoxHead, BBoxHead: PaddleBBoxHead}
    if isinstance(head, dict) and head.get("type") in paddle_heads:
        head.update(type=paddle_heads[head["type"]],
                    bbox_coder=dict(type=LegacyDeltaXYWHBBoxCoder, target_stds=[0.1, 0.1, 0.2, 0.2],
                                    dwh_clamp="none"))
        model["test_cfg"]["rcnn"] = dict(score_thr=0.05, nms=dict(iou_threshold=0.5), max_per_img=100,
                                         nms_top_k=-1, **{k: v for k, v in model["test_cfg"]["rcnn"].items()
                                                          if k == "mask_thr_binary"})
    return model


def to_paddle(model, data, depth=50, vd=False, groups=None, with_mask=False):
    """Turn an MMDetection-style model/data config into PaddleDetection's variant (in place)."""
    out_indices = model["backbone"].get("out_indices", (0, 1, 2, 3))
    model["backbone"] = paddle_backbone(depth, vd, groups, out_indices)
    _paddle_roi_align(model.get("roi_head"))
    paddle_numerics(model)
    is_retina = model.get("bbox_head", {}).get("type") is PaddleRetinaHead
    train, test = paddle_pipelines(with_mask, size_divisor=128 if is_retina else 32)
    data["train"]["pipeline"] = train
    data["val"]["pipeline"] = test
    data["test"]["pipeline"] = test
    return model
