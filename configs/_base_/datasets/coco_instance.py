"""COCO 2017 instance segmentation: boxes and masks (polygons / RLE decoded to bitmaps)."""
from detzoo.data.transforms import LoadAnnotations

from .coco_detection import *  # noqa: F401,F403
from .coco_detection import data, train_pipeline

for step in train_pipeline:
    if step["type"] is LoadAnnotations:
        step.update(with_mask=True)
    if step["type"].__name__ == "Collect":
        step["keys"] = ["img", "gt_bboxes", "gt_labels", "gt_bboxes_ignore", "gt_masks"]
data["train"]["pipeline"] = train_pipeline
evaluation = dict(interval=1, metric=["bbox", "segm"])
