"""Where the project's shared material (checkpoint layouts, sample images) lives.

CI clones the repository with ``shared/`` beside it; ``DETZOO_SHARED`` overrides.
"""
import os
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]
_CANDIDATES = [os.environ.get("DETZOO_SHARED"), _REPO.parent / "shared", _REPO / "shared", "/work/shared"]
SHARED = next((Path(c) for c in _CANDIDATES if c and (Path(c) / "data" / "demo.jpg").is_file()),
              _REPO.parent / "shared")
DATA = SHARED / "data"
DEMO_JPG = DATA / "demo.jpg"
COCO_SAMPLE = DATA / "mmdet-tests" / "coco_sample.json"
MMDET_LAYOUTS = SHARED / "checkpoint-layouts" / "mmdet"


def layout_dir():
    """The MMDetection checkpoint-layout folder (``DETZOO_CHECKPOINT_LAYOUTS`` overrides), or None."""
    candidates = [os.environ.get("DETZOO_CHECKPOINT_LAYOUTS", ""), MMDET_LAYOUTS]
    return next((Path(c) for c in candidates if c and Path(c).is_dir()), None)


def layout_fingerprint(items):
    """sha256 over sorted 'key d0,d1,..' lines: lets a layout test run where the file is absent."""
    import hashlib

    text = "\n".join(f"{k} {','.join(map(str, s))}" for k, s in sorted(items))
    return hashlib.sha256(text.encode()).hexdigest()
