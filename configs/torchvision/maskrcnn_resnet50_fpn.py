"""torchvision ``maskrcnn_resnet50_fpn`` (COCO_V1 weights: box AP 37.9, mask AP 34.6) on detzoo.

Faster R-CNN's settings plus the mask branch: MultiScaleRoIAlign 14x14 (sampling_ratio 2,
aligned=False), MaskRCNNHeads (4 convs) + ConvTranspose + 91-class logits, masks pasted with
torchvision's paste_masks_in_image and thresholded at 0.5. docs/torchvision.md.
"""
from detzoo.models.detectors import MaskRCNN
from detzoo.models.torchvision_compat import TorchvisionMaskHead, TorchvisionRoIExtractor

from .fasterrcnn_resnet50_fpn import data, evaluation, model, test_pipeline  # noqa: F401

model["type"] = MaskRCNN
model["roi_head"]["mask_roi_extractor"] = dict(
    type=TorchvisionRoIExtractor, roi_layer=dict(output_size=14, sampling_ratio=2, aligned=False),
    out_channels=256, featmap_strides=[4, 8, 16, 32])
model["roi_head"]["mask_head"] = dict(type=TorchvisionMaskHead, num_classes=91, num_convs=4, in_channels=256,
                                      conv_out_channels=256)
model["test_cfg"]["rcnn"]["mask_thr_binary"] = 0.5
evaluation = dict(interval=1, metric=["bbox", "segm"])
