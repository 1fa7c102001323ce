"""Faster R-CNN, RegNetX-3.2GF FPN, 2x schedule on COCO (MMDetection box AP 41.1): the 1x
config (``_base_/faster_rcnn_regnetx_3p2gf_fpn_1x.py``) with the 2x schedule's steps and epochs,
as mmdet configs/regnet/faster_rcnn_regnetx-3.2GF_fpn_2x_coco.py."""
from ._base_.faster_rcnn_regnetx_3p2gf_fpn_1x import *  # noqa: F401,F403

# after the 1x body, so that these replace its lr_config and runner
from .._base_.schedules.schedule_2x import lr_config, runner  # noqa: F401,E402
