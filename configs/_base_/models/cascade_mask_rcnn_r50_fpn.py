"""Cascade Mask R-CNN with a ResNet-50 FPN: Cascade R-CNN plus one FCN mask head per stage
(MMDetection 2.x configs/_base_/models/cascade_mask_rcnn_r50_fpn.py); at test time the stages'
mask probabilities are averaged."""
import copy

from .cascade_rcnn_r50_fpn import model as _cascade_rcnn
from .mask_rcnn_r50_fpn import model as _mask_rcnn

model = copy.deepcopy(_cascade_rcnn)

model["roi_head"].update(mask_roi_extractor=_mask_rcnn["roi_head"]["mask_roi_extractor"],
                         mask_head=_mask_rcnn["roi_head"]["mask_head"])
for stage_cfg in model["train_cfg"]["rcnn"]:
    stage_cfg["mask_size"] = 28
model["test_cfg"]["rcnn"]["mask_thr_binary"] = 0.5
