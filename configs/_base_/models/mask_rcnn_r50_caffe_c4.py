"""Mask R-CNN C4 with a caffe-style ResNet-50: MMDetection 2.x
``configs/_base_/models/mask_rcnn_r50_caffe_c4.py``.

Faster R-CNN C4 (faster_rcnn_r50_caffe_c4.py) plus an FCN mask head without convs
(``num_convs=0``) on the res5 shared head's 2048 x 7 x 7 output: a 2x2 stride-2 deconv to
256 x 14 x 14, ReLU, and 1x1 per-class logits, so masks are 14x14 (``mask_size=14``). The mask
branch shares the box branch's RoI extractor and res5 head (``mask_roi_extractor=None``).
"""
import copy

from detzoo.models.detectors import MaskRCNN
from detzoo.models.losses import CrossEntropyLoss
from detzoo.models.roi_heads.mask_heads import FCNMaskHead

from .faster_rcnn_r50_caffe_c4 import model as _faster_rcnn_c4

model = copy.deepcopy(_faster_rcnn_c4)
model["type"] = MaskRCNN
model["roi_head"].update(
    mask_roi_extractor=None,
    mask_head=dict(type=FCNMaskHead, num_convs=0, in_channels=2048, conv_out_channels=256, num_classes=80,
                   loss_mask=dict(type=CrossEntropyLoss, use_mask=True, loss_weight=1.0)),
)
model["train_cfg"]["rcnn"]["mask_size"] = 14
model["test_cfg"]["rcnn"]["mask_thr_binary"] = 0.5
