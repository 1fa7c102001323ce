"""SSD512 (VGG-16) on COCO: MMDetection's ssd512_coco (box AP 29.5).

ssd300_coco with 512x512 inputs: a fifth stride-2 extra layer and a last 4x4 conv (maps 64, 32,
16, 8, 4, 2, 1), default boxes from basesize_ratio_range (0.1, 0.9) on 7 levels (24564 boxes).
"""
from .ssd300_coco import *  # noqa: F401,F403
from .ssd300_coco import data, img_norm_cfg, model, test_pipeline, train_pipeline

input_size = 512
model["neck"].update(out_channels=(512, 1024, 512, 256, 256, 256, 256), level_strides=(2, 2, 2, 2, 1),
                     level_paddings=(1, 1, 1, 1, 1), last_kernel_size=4)
model["bbox_head"]["in_channels"] = (512, 1024, 512, 256, 256, 256, 256)
model["bbox_head"]["anchor_generator"].update(
    input_size=input_size, basesize_ratio_range=(0.1, 0.9), strides=[8, 16, 32, 64, 128, 256, 512],
    ratios=[[2], [2, 3], [2, 3], [2, 3], [2, 3], [2], [2]])
# the two Resize steps (train, and test inside MultiScaleFlipAug) take the new size
train_pipeline[4]["img_scale"] = (input_size, input_size)
test_pipeline[1]["img_scale"] = (input_size, input_size)
