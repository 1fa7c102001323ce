"""Weight-initialisation helpers shared by the heads."""
import math


def bias_init_with_prob(prior_prob: float) -> float:
    """The logit whose sigmoid is ``prior_prob`` (focal-loss heads start every class at this
    probability, Lin et al. 2017)."""
    return float(-math.log((1 - prior_prob) / prior_prob))
