"""Components that reproduce torchvision's detection models (v1 builders) on detzoo detectors.

One file per part (``common``: labels, box coder; ``rpn``: anchors and proposals; ``roi_heads``;
``dense_heads``: RetinaNet and FCOS). Each class extends a detzoo component and changes only what torchvision computes differently
(facts read from pytorch/vision ``torchvision/models/detection/*.py`` and ``ops/poolers.py``):

- ``TorchvisionBoxCoder``: ``_utils.BoxCoder`` arithmetic (deltas divided by ``weights``,
  centre ``x1 + 0.5 * w``, dw/dh clamped from above only at ``log(1000 / 16)``).
- ``TorchvisionAnchorGenerator``: ``anchor_utils.AnchorGenerator``: base anchors of explicit
  sizes, rounded to integers, centred on 0; the stride of each level is
  ``padded_image_size // feature_size`` (so P6 of an 800-high input has a stride of 61 in y).
- ``TorchvisionRPNHead``: ``rpn.RegionProposalNetwork.filter_proposals``: top-n per level on
  the objectness *logits*, sigmoid of the kept logits, ``remove_small_boxes`` (sides >= 1e-3).
- ``TorchvisionRoIExtractor``: ``MultiScaleRoIAlign``'s ``LevelMapper``:
  ``floor(4 + log2(sqrt(area) / 224) + 1e-6)``.
- ``TorchvisionBBoxHead``: ``TwoMLPHead`` + ``FastRCNNPredictor`` (background at index 0 of
  ``num_classes``, per-class boxes for every class) and ``RoIHeads.postprocess_detections``.
- ``TorchvisionMaskHead``: ``MaskRCNNHeads`` + predictor, masks pasted by ``paste_masks_in_image``.
- ``TorchvisionRoIHead``: NMS in network-input pixels, then boxes multiplied by
  ``original / resized`` (``transform.resize_boxes``), masks pasted with the rescaled boxes.
- ``TorchvisionRetinaHead`` / ``TorchvisionFCOSHead``: the heads' ``postprocess_detections``.

Labels are torchvision's: indices into its 91-entry COCO list (``TORCHVISION_COCO_CATEGORIES``,
'__background__' at 0 and 'N/A' gaps), equal to COCO category ids. Inference only: training
these configs is not supported (a clear error says so).
"""
from __future__ import annotations

from .common import TORCHVISION_COCO_CATEGORIES, TorchvisionBoxCoder, resize_boxes_to_original
from .rpn import TorchvisionAnchorGenerator, TorchvisionRPNHead
from .roi_heads import (TorchvisionBBoxHead, TorchvisionMaskHead, TorchvisionRoIExtractor, TorchvisionRoIHead,
                        paste_masks_torchvision)
from .dense_heads import TorchvisionFCOSHead, TorchvisionRetinaHead

__all__ = ["TORCHVISION_COCO_CATEGORIES", "TorchvisionBoxCoder", "resize_boxes_to_original",
           "TorchvisionAnchorGenerator", "TorchvisionRPNHead", "TorchvisionRoIExtractor", "TorchvisionBBoxHead",
           "TorchvisionMaskHead", "paste_masks_torchvision", "TorchvisionRoIHead", "TorchvisionRetinaHead",
           "TorchvisionFCOSHead"]
