"""A ResNet-18 FPN Faster R-CNN trained from scratch on the generated shapes dataset.

Small and narrow so that it trains on a 2-core CPU in minutes: BN trains (no ImageNet weights),
64-channel FPN, 256-wide box head, smaller anchors for the small objects, AdamW.
`detzoo quickstart` generates the data into <work dir>/data and points the paths there.
"""
import torch

from detzoo.data import CocoDataset
from detzoo.data.transforms import Normalize

from .._base_.datasets.coco_detection import img_norm_cfg, test_pipeline, train_pipeline
from .._base_.default_runtime import *  # noqa: F401,F403
from .._base_.models.faster_rcnn_r50_fpn import model

classes = ("circle", "square", "triangle", "star")
channels = 64

model["backbone"].update(depth=18, frozen_stages=-1, norm_eval=False)
model["neck"].update(in_channels=[64, 128, 256, 512], out_channels=channels)
model["rpn_head"].update(in_channels=channels, feat_channels=channels)
model["rpn_head"]["anchor_generator"]["scales"] = [4]
model["roi_head"]["bbox_roi_extractor"]["out_channels"] = channels
model["roi_head"]["bbox_head"].update(in_channels=channels, fc_out_channels=256, num_classes=len(classes))
model["train_cfg"]["rpn_proposal"].update(nms_pre=1000, max_per_img=300)
model["train_cfg"]["rcnn"]["sampler"]["num"] = 128
model["test_cfg"]["rpn"].update(nms_pre=500, max_per_img=300)

img_scale = (320, 256)
for step in train_pipeline:
    if step["type"].__name__ == "Resize":
        step["img_scale"] = img_scale
test_pipeline[1]["img_scale"] = img_scale

data_root = "data/quickstart/"
data = dict(
    samples_per_gpu=4,
    workers_per_gpu=1,
    train=dict(type=CocoDataset, ann_file=data_root + "train.json", img_prefix=data_root + "images/",
               classes=classes, pipeline=train_pipeline),
    val=dict(type=CocoDataset, ann_file=data_root + "val.json", img_prefix=data_root + "images/",
             classes=classes, pipeline=test_pipeline),
    test=dict(type=CocoDataset, ann_file=data_root + "val.json", img_prefix=data_root + "images/",
              classes=classes, pipeline=test_pipeline),
)

optimizer = dict(type=torch.optim.AdamW, lr=0.002, weight_decay=0.05)
optimizer_config = dict(grad_clip=dict(max_norm=10, norm_type=2))
lr_config = dict(policy="step", warmup="linear", warmup_iters=100, warmup_ratio=0.01, step=[9, 11])
runner = dict(type="EpochBasedRunner", max_epochs=12)
auto_scale_lr = dict(enable=False, base_batch_size=16)
log_config = dict(interval=20)
evaluation = dict(interval=4, metric="bbox")
checkpoint_config = dict(interval=1, max_keep_ckpts=2)
