"""A ResNet-18 FPN Faster R-CNN trained from scratch on the generated shapes dataset.

Sized so that `detzoo quickstart` (1200 generated training images, 5 epochs = 1500 iterations of
4 images) trains, evaluates and draws in about 5 minutes on a free 2-core CPU and reaches a COCO
bbox mAP of about 0.7 on its 100 validation images (0.727 with seed 0, 0.732 with seed 1):
  - ResNet-18 at half width (32 stem/base channels): the shapes need little capacity, and the
    convolutions are most of the cost on a CPU. BN trains (frozen_stages=-1, norm_eval=False):
    there are no ImageNet weights to keep.
  - 48-channel FPN and RPN: their 3x3 convs on the stride-4 level are the next largest cost.
  - anchors of 4 x stride (16 px on P2 .. 256 px on P6) for objects of 8..160 px; 256-wide
    box head; 500 pre-NMS proposals per level and 300 after NMS (the images hold 1..6 objects).
  - AdamW with a linear warmup and a per-iteration cosine decay, so `--epochs` rescales the
    whole schedule. Peak lr 1.5e-3 sits in the middle of what trains well: after 4 epochs 1e-3
    gave mAP 0.62, 2e-3 0.67, but 2.5e-3 0.54 and 3e-3 0.40 (the box classifier stalls).
  - no loader worker (decoding a 320 px JPEG costs ~2 ms, a worker process
    would only compete with the two compute threads for the two cores).
`detzoo quickstart` generates the data into <work dir>/data and points the paths there.
"""

from .._base_.datasets.coco_detection import test_pipeline, train_pipeline
from .._base_.datasets.shapes_quickstart import classes, data_root, shapes_data  # noqa: F401
from .._base_.default_runtime import *  # noqa: F401,F403
from .._base_.schedules.quickstart_adamw import *  # noqa: F401,F403
from .._base_.models.faster_rcnn_r50_fpn import model

channels = 48

model["backbone"].update(depth=18, stem_channels=32, base_channels=32, frozen_stages=-1, norm_eval=False)
model["backbone"]["init_cfg"] = None  # trained from scratch: no ImageNet weights for this narrow ResNet-18
model["neck"].update(in_channels=[32, 64, 128, 256], out_channels=channels)
model["rpn_head"].update(in_channels=channels, feat_channels=channels)
model["rpn_head"]["anchor_generator"]["scales"] = [4]
model["roi_head"]["bbox_roi_extractor"]["out_channels"] = channels
model["roi_head"]["bbox_head"].update(in_channels=channels, fc_out_channels=256, num_classes=len(classes))
model["train_cfg"]["rpn_proposal"].update(nms_pre=500, max_per_img=300)
model["train_cfg"]["rcnn"]["sampler"]["num"] = 128
model["test_cfg"]["rpn"].update(nms_pre=500, max_per_img=300)

img_scale = (320, 256)
for step in train_pipeline:
    if step["type"].__name__ == "Resize":
        step["img_scale"] = img_scale
test_pipeline[1]["img_scale"] = img_scale

data = shapes_data(train_pipeline, test_pipeline)

