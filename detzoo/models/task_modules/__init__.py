"""Target assignment, sampling, box coding and anchor generation shared by all heads."""
from .anchors import AnchorGenerator
from .assigners import AssignResult, MaxIoUAssigner
from .coders import DeltaXYWHBBoxCoder
from .samplers import PseudoSampler, RandomSampler, SamplingResult

__all__ = ["AnchorGenerator", "AssignResult", "MaxIoUAssigner", "DeltaXYWHBBoxCoder",
           "PseudoSampler", "RandomSampler", "SamplingResult"]
