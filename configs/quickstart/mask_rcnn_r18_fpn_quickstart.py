"""Mask R-CNN on the generated shapes dataset: the Faster R-CNN quickstart (half-width ResNet-18
FPN from scratch, AdamW + cosine) plus a 14x14 mask RoI extractor and a 4-conv FCN mask head at
the FPN width; masks come from the dataset's polygons, rasterised at load time.

`detzoo quickstart --config mask_rcnn_r18_fpn_quickstart` trains, evaluates bbox and segm mAP on
the 100 validation images and draws the masks.
"""
import copy

from detzoo.data.transforms import Collect, LoadAnnotations

from .._base_.models.mask_rcnn_r50_fpn import model as _mask_rcnn
from .faster_rcnn_r18_fpn_quickstart import *  # noqa: F401,F403
from .faster_rcnn_r18_fpn_quickstart import channels, classes, data, model, train_pipeline

model = copy.deepcopy(model)
model["type"] = _mask_rcnn["type"]
model["roi_head"]["mask_roi_extractor"] = copy.deepcopy(_mask_rcnn["roi_head"]["mask_roi_extractor"])
model["roi_head"]["mask_roi_extractor"]["out_channels"] = channels
model["roi_head"]["mask_head"] = copy.deepcopy(_mask_rcnn["roi_head"]["mask_head"])
model["roi_head"]["mask_head"].update(in_channels=channels, conv_out_channels=channels, num_classes=len(classes))
model["train_cfg"]["rcnn"].update(mask_size=28)
model["train_cfg"]["rcnn"]["assigner"]["match_low_quality"] = True
model["test_cfg"]["rcnn"]["mask_thr_binary"] = 0.5

for step in train_pipeline:
    if step["type"] is LoadAnnotations:
        step.update(with_mask=True)
    if step["type"] is Collect:
        step["keys"] = ["img", "gt_bboxes", "gt_labels", "gt_bboxes_ignore", "gt_masks"]
data["train"]["pipeline"] = train_pipeline
evaluation = dict(interval=max_epochs, metric=["bbox", "segm"])  # noqa: F405
