"""YOLOv3 with a ResNet-34 backbone, 270 epochs on COCO: PaddleDetection's yolov3_r34 row
(box AP 36.2 / 34.3 / 31.4 tested at 608 / 416 / 320 with one checkpoint), built from detzoo's
modules; configs/yolo/_base_/paddle_yolov3.py says what follows PaddleDetection and what does
not. The 416 / 320 rows: ``--cfg-options "data.test.pipeline.1.img_scale=(416,416)"``.

ResNet-34 (BasicBlock) gives 128 / 256 / 512 channels at strides 8 / 16 / 32 (our out_indices
1, 2, 3 = Paddle's feature_maps [3, 4, 5]); its batch norms train (Paddle: freeze_at 0,
freeze_norm False). Like Paddle's, the first block's shortcut is a 1x1 projection
(``res2a_branch1``: ``first_block_projection``). Backbone weights: ImageNet ResNet-34 in Paddle's release; Paddle's
``ResNet34_pretrained`` (``model.backbone.init_cfg``).
"""
from detzoo.models.backbones import ResNet

from .._base_.default_runtime import *  # noqa: F401,F403
from ._base_.paddle_yolov3 import *  # noqa: F401,F403
from ._base_.paddle_yolov3 import paddle_yolo_numerics
from ._base_.yolov3_d53 import model
# the COCO data, schedule and evaluation of the Darknet-53 row (it runs first: its edits of the
# shared model dict are overridden below)
from .yolov3_darknet_270e_coco import data, data_root, dataset_type, evaluation  # noqa: F401

paddle_yolo_numerics(model)  # Paddle's yolo_box decoding + multiclass NMS at test time

model["backbone"] = dict(type=ResNet, depth=34, num_stages=4, out_indices=(1, 2, 3), frozen_stages=-1,
                         norm_cfg=dict(type="BN", requires_grad=True), norm_eval=False, style="pytorch",
                         first_block_projection=True)
model["backbone"]["init_cfg"] = dict(type="Pretrained", checkpoint="ResNet34_pretrained")
model["neck"]["in_channels"] = [512, 256, 128]
