"""Fixtures shared across test folders."""
import sys
from pathlib import Path

import pytest
import torch

# test modules import tests/shared_paths.py by name
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def shapes_dataset(tmp_path_factory):
    """A small generated COCO-format dataset (train 16, val 6 images)."""
    from detzoo.data import make_shapes_dataset

    return make_shapes_dataset(tmp_path_factory.mktemp("shapes"), num_train=16, num_val=6, seed=1)


@pytest.fixture(scope="session")
def quickstart_checkpoint(tmp_path_factory):
    """Random-weight quickstart detector saved as an MMDetection-style checkpoint."""
    from detzoo.config import load_config
    from detzoo.models.builder import build_detector

    torch.manual_seed(0)
    model = build_detector(load_config("faster_rcnn_r18_fpn_quickstart")["model"])
    path = tmp_path_factory.mktemp("ckpt") / "quickstart_random.pth"
    torch.save({"meta": {"CLASSES": ["circle", "square", "triangle", "star"]},
                "state_dict": model.state_dict()}, path)
    return path
