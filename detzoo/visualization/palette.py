"""A fixed, distinct colour per class index (BGR, for OpenCV).

The first 80 colours are picked once by greedy farthest-point selection over a 6-level RGB grid,
leaving out dark and greyish cells, so any two differ by at least 51 grey levels (Euclidean RGB).
Later indices step the hue by the golden ratio. Everything is integer/deterministic: the same
index gives the same colour in every run and on every machine.
"""
from __future__ import annotations

import colorsys
from functools import lru_cache
from itertools import product

import numpy as np

NUM_FIXED = 80
_GOLDEN = 0.6180339887498949
_LEVELS = (0, 51, 102, 153, 204, 255)
_FIRST_RGB = (204, 0, 51)  # a crimson; the rest are chosen to be far from those before


@lru_cache(maxsize=1)
def _fixed_rgb() -> np.ndarray:
    cells = np.array([c for c in product(_LEVELS, repeat=3)
                      if max(c) >= 153 and max(c) - min(c) >= 102], dtype=np.int64)
    chosen = [int(np.flatnonzero((cells == _FIRST_RGB).all(1))[0])]
    nearest = ((cells - cells[chosen[0]]) ** 2).sum(1)
    while len(chosen) < NUM_FIXED:
        pick = int(np.argmax(nearest))  # first maximum: ties resolve deterministically
        chosen.append(pick)
        nearest = np.minimum(nearest, ((cells - cells[pick]) ** 2).sum(1))
    return cells[chosen].astype(np.uint8)


def _stepped_rgb(index: int) -> tuple[int, int, int]:
    hue = (index * _GOLDEN) % 1.0
    saturation, value = ((0.9, 0.95), (0.55, 1.0), (1.0, 0.65))[index % 3]
    return tuple(int(round(c * 255)) for c in colorsys.hsv_to_rgb(hue, saturation, value))


def get_color(index: int) -> tuple[int, int, int]:
    """BGR colour of class ``index`` (0-based) as Python ints."""
    if index < 0:
        raise ValueError(f"class index must be >= 0, got {index}")
    r, g, b = _fixed_rgb()[index].tolist() if index < NUM_FIXED else _stepped_rgb(index)
    return (b, g, r)


def get_palette(num_classes: int) -> np.ndarray:
    """uint8 [num_classes, 3] BGR colours, row i = ``get_color(i)``."""
    return np.array([get_color(i) for i in range(num_classes)], dtype=np.uint8).reshape(-1, 3)
