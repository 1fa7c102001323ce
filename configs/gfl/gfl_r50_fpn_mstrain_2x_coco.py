"""GFL, ResNet-50 FPN, multi-scale training, 2x on COCO (MMDetection box AP 42.9).

MMDetection 2.x configs/gfl/gfl_r50_fpn_mstrain_2x_coco.py: the 1x config with 24 epochs (lr
steps at 16 and 22) and a training short side drawn from [480, 800] (long side <= 1333).
"""
from detzoo.data.transforms import Resize

from .gfl_r50_fpn_1x_coco import *  # noqa: F401,F403

for step in train_pipeline:  # noqa: F405
    if step["type"] is Resize:
        step.update(img_scale=[(1333, 480), (1333, 800)], multiscale_mode="range")
lr_config = dict(policy="step", warmup="linear", warmup_iters=500, warmup_ratio=0.001, step=[16, 22])
runner = dict(type="EpochBasedRunner", max_epochs=24)
