"""High-level entry points: build and run detectors, test and train from configs."""
from .inference import inference_detector, init_detector
from .test import evaluate_detector, run_test

__all__ = ["inference_detector", "init_detector", "evaluate_detector", "run_test"]
