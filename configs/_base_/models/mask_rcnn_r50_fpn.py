"""Mask R-CNN with a ResNet-50 FPN: MMDetection 2.x defaults (configs/_base_/models/mask_rcnn_r50_fpn.py).

Faster R-CNN plus a 14x14 mask RoI extractor and a 4-conv + deconv FCN mask head (28x28 per-class
masks); the R-CNN assigner keeps low-quality matches (MMDetection's Mask R-CNN base does).
"""
import copy

from detzoo.models.detectors import MaskRCNN
from detzoo.models.losses import CrossEntropyLoss
from detzoo.models.roi_heads import SingleRoIExtractor
from detzoo.models.roi_heads.mask_heads import FCNMaskHead
from detzoo.ops import RoIAlign

from .faster_rcnn_r50_fpn import model as _faster_rcnn

# a copy: another base of the same config may import the Faster R-CNN model too
model = copy.deepcopy(_faster_rcnn)

model["type"] = MaskRCNN
model["roi_head"].update(
    mask_roi_extractor=dict(
        type=SingleRoIExtractor,
        roi_layer=dict(type=RoIAlign, output_size=14, sampling_ratio=0, aligned=True),
        out_channels=256,
        featmap_strides=[4, 8, 16, 32],
    ),
    mask_head=dict(
        type=FCNMaskHead,
        num_convs=4,
        in_channels=256,
        conv_out_channels=256,
        num_classes=80,
        loss_mask=dict(type=CrossEntropyLoss, use_mask=True, loss_weight=1.0),
    ),
)
model["train_cfg"]["rcnn"]["assigner"]["match_low_quality"] = True
model["train_cfg"]["rcnn"]["mask_size"] = 28
model["test_cfg"]["rcnn"]["mask_thr_binary"] = 0.5
