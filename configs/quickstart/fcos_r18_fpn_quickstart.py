"""An FCOS with a ResNet-18 FPN trained from scratch on the generated shapes dataset.

`detzoo quickstart --config fcos_r18_fpn_quickstart` (1200 generated training images, 5 epochs =
1500 iterations of 4 images at 320 x 256):
  - ResNet-18 at half width (32 stem/base channels) with BN training, as the Faster R-CNN
    quickstart: there are no ImageNet weights to keep.
  - a 48-channel FPN from C3 with P6/P7 convs (strides 8..128) and a 48-channel GN head (16
    groups, 4 convs per tower), the COCO model's structure narrowed.
  - the shapes are 12..160 px, so the regress ranges are halved: a point trains on level l when
    its largest side distance lies in 32 * 2**(l-1)..32 * 2**l px (level 0 from -1, the last up
    to infinity); centre sampling, stride-normalised distances, centre-ness on the regression
    tower and GIoU, the tricks of fcos_center-normbbox-centeronreg-giou (they make FCOS train
    faster and better).
  - AdamW with a linear warm-up and a per-iteration cosine decay, gradients clipped at 10, as in
    faster_rcnn_r18_fpn_quickstart; no loader worker.
`detzoo quickstart` generates the data into <work dir>/data and points the paths there.

Measured (seed 0, 2 cores): 5 epochs gave bbox mAP 0.455; 10 epochs 0.696 (mAP_50 0.865) in 449 s.
"""
from detzoo.models.dense_heads.fcos_head import INF
from detzoo.models.losses.iou_loss import GIoULoss

from .._base_.datasets.coco_detection import test_pipeline, train_pipeline
from .._base_.datasets.shapes_quickstart import classes, data_root, shapes_data  # noqa: F401
from .._base_.default_runtime import *  # noqa: F401,F403
from .._base_.schedules.quickstart_adamw import *  # noqa: F401,F403
from .._base_.models.fcos_r50_caffe_fpn_gn_head import model

channels = 48

model["backbone"].update(depth=18, stem_channels=32, base_channels=32, frozen_stages=-1,
                         norm_cfg=dict(type="BN", requires_grad=True), norm_eval=False, style="pytorch")
model["backbone"]["init_cfg"] = None  # trained from scratch: no ImageNet weights for this narrow ResNet-18
model["neck"].update(in_channels=[32, 64, 128, 256], out_channels=channels)
model["bbox_head"].update(
    num_classes=len(classes), in_channels=channels, feat_channels=channels,
    norm_cfg=dict(type="GN", num_groups=16, requires_grad=True),
    regress_ranges=((-1, 32), (32, 64), (64, 128), (128, 256), (256, INF)),
    center_sampling=True, center_sample_radius=1.5, norm_on_bbox=True, centerness_on_reg=True,
    loss_bbox=dict(type=GIoULoss, loss_weight=1.0))
model["test_cfg"].update(nms_pre=500, nms=dict(iou_threshold=0.6))

img_scale = (320, 256)
for step in train_pipeline:
    if step["type"].__name__ == "Resize":
        step["img_scale"] = img_scale
test_pipeline[1]["img_scale"] = img_scale

data = shapes_data(train_pipeline, test_pipeline)

max_epochs = 10
runner["max_epochs"] = evaluation["interval"] = max_epochs  # noqa: F405
