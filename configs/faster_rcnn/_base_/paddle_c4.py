"""What the PaddleDetection (static / 0.x) C4 rows share: faster_rcnn_r50_1x / _2x,
faster_rcnn_r50_vd_1x, faster_rcnn_r101_1x, mask_rcnn_r50_1x / _2x (seed: PaddleDetection's model
zoo page; nets from its ``static/configs/{faster,mask}_rcnn_r50_1x.yml``-style configs and
``static/ppdet/modeling``: ``ResNet(feature_maps=4)``, ``RPNHead``, ``RoIAlign``,
``BBoxHead(head=ResNetC5)``, ``MaskHead``). Weights: ``detzoo convert X.tar X.pth --from paddle``.

Same architecture as Paddle's, so converted weights load strictly (converter arch
``faster_rcnn_c4`` / ``mask_rcnn_c4``):
- backbone ResNet stages 2..4 (``res2``..``res4``, ``num_stages=3``) with frozen
  ``affine_channel`` norms (FrozenBN, mean 0, var 1, eps 0 -- exact), variant 'b' (stride on the
  3x3) or 'd' (vd: deep stem + avg-pool shortcuts); ``freeze_at: 2`` -> frozen_stages 1;
- RPN on ``res4`` (1024 channels, stride 16): ``conv_rpn`` 3x3 + ``rpn_cls_logits`` (15
  sigmoid scores) + ``rpn_bbox_pred``; anchors 32..512 x ratios 0.5/1/2, ratio-major as in
  MMDetection; proposals 12000 -> 2000 (train), 6000 -> 1000 (test), NMS 0.7;
- RoIAlign 14x14 on ``res4`` with ``sampling_ratio 0`` (adaptive) and no half-pixel shift
  (fluid ``roi_align``: ``aligned=False``), then ``ResNetC5``: the ``res5`` stage (same depth and
  variant as the backbone; the vd rows assume ``variant: d`` there too) as the shared RoI head,
  global average pooling and the ``cls_score`` / ``bbox_pred`` fcs (81-way softmax, converted to
  80 + background last);
- Mask R-CNN: the mask head reuses the res5 output (no convs): ``conv5_mask`` 2x2 deconv to 256
  channels + ReLU, ``mask_fcn_logits`` 1x1 -> 14x14 masks.
Preprocessing and Paddle's test-time box arithmetic (``paddle_numerics``: +1 anchors on one
stride-16 level with sizes 32..512, ``generate_proposals`` 6000 -> NMS 0.7 -> 1000, R-CNN decode
in original-image pixels and ``multiclass_nms``), and what is not reproduced: as for the FPN
rows, configs/faster_rcnn/_base_/paddle_fpn.py.
"""
import copy

from detzoo.models.roi_heads import ResLayer

from .paddle_fpn import paddle_backbone, paddle_norm_cfg, paddle_numerics, paddle_pipelines


def to_paddle_c4(model, data, depth=50, vd=False, with_mask=False):
    """Turn MMDetection's C4 model config (configs/_base_/models/*_r50_caffe_c4.py) and a COCO
    data config into PaddleDetection's C4 variant (in place)."""
    backbone = paddle_backbone(depth, vd, out_indices=(2,))
    backbone.update(num_stages=3, strides=(1, 2, 2), dilations=(1, 1, 1))
    model["backbone"] = backbone
    roi_head = model["roi_head"]
    roi_head["shared_head"] = dict(type=ResLayer, depth=depth, stage=3, stride=2, dilation=1, style="pytorch",
                                   avg_down=vd, norm_cfg=copy.deepcopy(paddle_norm_cfg), norm_eval=True,
                                   init_cfg=dict(backbone["init_cfg"]))  # res5 of the same archive
    roi_head["bbox_roi_extractor"]["roi_layer"].update(output_size=14, sampling_ratio=0, aligned=False)
    paddle_numerics(model, rpn_pre_nms_top_n=6000, rpn_post_nms_top_n=1000)
    train, test = paddle_pipelines(with_mask)
    data["train"]["pipeline"] = train
    data["val"]["pipeline"] = test
    data["test"]["pipeline"] = test
    return model
