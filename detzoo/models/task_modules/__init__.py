"""Target assignment, sampling, box coding and anchor generation shared by all heads."""
from .anchors import AnchorGenerator
from .assigners import AssignResult, MaxIoUAssigner
from .coders import DeltaXYWHBBoxCoder
from .samplers import PseudoSampler, RandomSampler, SamplingResult

__all__ = ["AnchorGenerator", "AssignResult", "MaxIoUAssigner", "DeltaXYWHBBoxCoder",
           "PseudoSampler", "RandomSampler", "SamplingResult"]

# YOLOv3
from .anchors import YOLOAnchorGenerator  # noqa: E402
from .assigners import GridAssigner  # noqa: E402
from .coders import YOLOBBoxCoder  # noqa: E402

__all__ += ["YOLOAnchorGenerator", "GridAssigner", "YOLOBBoxCoder"]

from .assigners.atss_assigner import ATSSAssigner  # noqa: E402
from .coders.distance_point import DistancePointBBoxCoder  # noqa: E402
from .prior_generators import MlvlPointGenerator  # noqa: E402

__all__ += ["ATSSAssigner", "DistancePointBBoxCoder", "MlvlPointGenerator"]
