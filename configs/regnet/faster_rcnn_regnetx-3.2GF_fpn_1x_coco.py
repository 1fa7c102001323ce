"""Faster R-CNN, RegNetX-3.2GF FPN, 1x schedule on COCO (MMDetection box AP 39.9); the body is in
``_base_/faster_rcnn_regnetx_3p2gf_fpn_1x.py``."""
from ._base_.faster_rcnn_regnetx_3p2gf_fpn_1x import *  # noqa: F401,F403
