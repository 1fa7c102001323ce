"""What the benchmark scripts share: timing a callable after warm-up runs."""
from __future__ import annotations

import time
from typing import Callable, List


def repeat_times(fn: Callable[[], object], reps: int, warmup: int = 2) -> List[float]:
    """Seconds of ``reps`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times
