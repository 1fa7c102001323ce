"""Fixtures shared by the evaluation tests."""
import contextlib
import io

import pytest
from pycocotools.coco import COCO

from coco_helpers import COCO_SAMPLE, coco_from_dict, synthetic_gt_dict


@pytest.fixture(scope="module")
def synthetic_gt():
    gt = synthetic_gt_dict()
    return gt, coco_from_dict(gt)


@pytest.fixture(scope="module")
def sample_gt():
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(COCO_SAMPLE)
