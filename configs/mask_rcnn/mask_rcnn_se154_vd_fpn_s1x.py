"""PaddleDetection's mask_rcnn_se154_vd_fpn_s1x row (SENet154-vd FPN, box AP 44.0, mask AP 38.7),
in detzoo's modules.

Model and schedule as configs/faster_rcnn/faster_rcnn_se154_vd_fpn_s1x.py plus the mask head
(configs/faster_rcnn/_base_/paddle_fpn.py says what follows Paddle). Weights:
`detzoo convert mask_rcnn_se154_vd_fpn_s1x.tar mask_rcnn_se154_vd_fpn_s1x.pth --from paddle
--arch mask_rcnn_se154_vd_fpn`.
"""
from detzoo.models.backbones import SENet

from .._base_.datasets.coco_instance import *  # noqa: F401,F403
from .._base_.default_runtime import *  # noqa: F401,F403
from .._base_.models.mask_rcnn_r50_fpn import model  # noqa: F401
from .._base_.schedules.schedule_1x import *  # noqa: F401,F403
from ..faster_rcnn._base_.paddle_fpn import paddle_norm_cfg, to_paddle

to_paddle(model, data, depth=50, with_mask=True)  # noqa: F405
model["backbone"] = dict(type=SENet, depth=152, groups=64, base_width=4, out_indices=(0, 1, 2, 3),
                         frozen_stages=1, norm_cfg=dict(paddle_norm_cfg), norm_eval=True)
model["backbone"]["init_cfg"] = dict(type="Pretrained", checkpoint="SENet154_vd_pretrained")
optimizer["lr"] = 0.01  # noqa: F405
lr_config = dict(policy="step", warmup="linear", warmup_iters=1000, warmup_ratio=0.1, step=[14, 16])
runner = dict(type="EpochBasedRunner", max_epochs=18)
auto_scale_lr = dict(enable=True, base_batch_size=8)
