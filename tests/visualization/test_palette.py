"""Class colours: the same in every call and every process, distinct for the first 80."""
import json
import subprocess
import sys

import numpy as np

from detzoo.visualization import get_color, get_palette


def test_palette_is_stable_across_calls_and_processes():
    first = [get_color(i) for i in range(200)]
    assert first == [get_color(i) for i in range(200)]
    assert np.array_equal(get_palette(200), np.array(first, np.uint8))
    code = ("import json; from detzoo.visualization.palette import get_color; "
            "print(json.dumps([get_color(i) for i in range(200)]))")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout
    assert [tuple(c) for c in json.loads(other)] == first


def test_first_80_colours_are_distinct_and_not_dark():
    colors = get_palette(80).astype(np.float64)
    distance = np.sqrt(((colors[:, None] - colors[None]) ** 2).sum(-1))
    np.fill_diagonal(distance, np.inf)
    assert distance.min() >= 50  # clearly different colours, not just different numbers
    assert colors.max(axis=1).min() >= 150  # no near-black colour invisible on dark images
    later = {get_color(i) for i in range(80, 400)}
    assert len(later) > 300 and all(0 <= c <= 255 for col in later for c in col)
