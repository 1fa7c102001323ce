"""The SENet154-vd backbone and "s1x" schedule of PaddleDetection's faster_rcnn_se154_vd_fpn_s1x
and mask_rcnn_se154_vd_fpn_s1x rows (both configs import this file).

Backbone: detzoo.models.backbones.SENet as Paddle's SENet depth 152, groups 64, group_width 4,
variant d; norm_type affine_channel -> FrozenBN eps 0; freeze_at 2 -> frozen_stages 1; ImageNet
weights ``SENet154_vd_pretrained``. Schedule "s1x" (Paddle: 260k iterations at 8 images, lr 0.01,
x0.1 at 200k and 240k, 1000-iteration warm-up from 0.1x) as epochs of COCO train2017: 18 epochs,
steps after 14 and 16.
"""
from detzoo.models.backbones import SENet

from ..._base_.schedules.schedule_1x import *  # noqa: F401,F403
from .paddle_fpn import paddle_norm_cfg



def se154_backbone() -> dict:
    """A fresh backbone dict for ``model["backbone"]``."""
    return dict(type=SENet, depth=152, groups=64, base_width=4, out_indices=(0, 1, 2, 3),
                frozen_stages=1, norm_cfg=dict(paddle_norm_cfg), norm_eval=True,
                init_cfg=dict(type="Pretrained", checkpoint="SENet154_vd_pretrained"))


optimizer["lr"] = 0.01  # noqa: F405
lr_config = dict(policy="step", warmup="linear", warmup_iters=1000, warmup_ratio=0.1, step=[14, 16])
runner = dict(type="EpochBasedRunner", max_epochs=18)
auto_scale_lr = dict(enable=True, base_batch_size=8)
