"""Small timing helpers shared by the bench scripts: percentiles of many single calls."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def per_call(fn: Callable[[], object], n: int, warmup: int = 200) -> np.ndarray:
    """Seconds taken by each of `n` calls of `fn` (after a warm-up)."""
    for _ in range(warmup):
        fn()
    out = np.empty(n)
    clock = time.perf_counter
    for i in range(n):
        t = clock()
        fn()
        out[i] = clock() - t
    return out


def us(samples: np.ndarray, q: float = 50) -> float:
    return float(np.percentile(samples, q) * 1e6)
