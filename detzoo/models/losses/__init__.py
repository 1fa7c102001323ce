from .accuracy import accuracy
from .cross_entropy import CrossEntropyLoss
from .focal_loss import FocalLoss, sigmoid_focal_loss
from .l1 import L1Loss, SmoothL1Loss
from .reduction import weight_reduce_loss

__all__ = ["accuracy", "CrossEntropyLoss", "FocalLoss", "L1Loss", "SmoothL1Loss", "sigmoid_focal_loss",
           "weight_reduce_loss"]

from .gfocal_loss import (DistributionFocalLoss, QualityFocalLoss, distribution_focal_loss,  # noqa: E402
                          quality_focal_loss)
from .iou_loss import GIoULoss, IoULoss, giou_loss, iou_loss  # noqa: E402

__all__ += ["DistributionFocalLoss", "QualityFocalLoss", "distribution_focal_loss", "quality_focal_loss",
            "GIoULoss", "IoULoss", "giou_loss", "iou_loss"]

from .mse_loss import MSELoss  # noqa: E402

__all__ += ["MSELoss"]
