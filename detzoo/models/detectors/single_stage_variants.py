"""Named one-stage detectors (MMDetection's ``FCOS``, ``ATSS``, ``GFL``): each is a
:class:`SingleStageDetector`; only the head differs (``FCOSHead``, ``ATSSHead``, ``GFLHead``).
The names exist so configs and checkpoint metadata read as in the reference."""
from .single_stage import SingleStageDetector


class FCOS(SingleStageDetector):
    """FCOS (Tian et al., 2019): backbone -> FPN -> ``FCOSHead``."""


class ATSS(SingleStageDetector):
    """ATSS (Zhang et al., 2020): backbone -> FPN -> ``ATSSHead``."""


class GFL(SingleStageDetector):
    """Generalized Focal Loss (Li et al., 2020): backbone -> FPN -> ``GFLHead``."""
