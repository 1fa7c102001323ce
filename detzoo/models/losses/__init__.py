from .accuracy import accuracy
from .cross_entropy import CrossEntropyLoss
from .l1 import L1Loss, SmoothL1Loss
from .reduction import weight_reduce_loss

__all__ = ["accuracy", "CrossEntropyLoss", "L1Loss", "SmoothL1Loss", "weight_reduce_loss"]
