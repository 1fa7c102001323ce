"""RPN, ResNet-50 FPN, 1x schedule on COCO (MMDetection AR@1000 58.2).

Trains on boxes only (no labels); evaluated by proposal recall. `detzoo test` with
`--out x.pkl` writes the proposal file Fast R-CNN reads (docs/proposals.md).
"""
from detzoo.data.transforms import Collect, LoadAnnotations

from .._base_.datasets.coco_detection import *  # noqa: F401,F403
from .._base_.default_runtime import *  # noqa: F401,F403
from .._base_.models.rpn_r50_fpn import model  # noqa: F401
from .._base_.schedules.schedule_1x import *  # noqa: F401,F403

# as mmdet: the RPN needs no class labels (and does not collect crowd boxes)
for step in train_pipeline:  # noqa: F405
    if step["type"] is LoadAnnotations:
        step.update(with_bbox=True, with_label=False)
    elif step["type"] is Collect:
        step["keys"] = ["img", "gt_bboxes"]
# mmdet 2.x uses its own 'proposal_fast' recall; 'proposal' is the COCO AR of its 'proposal' metric
evaluation = dict(interval=1, metric="proposal")
