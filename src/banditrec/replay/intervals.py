"""Confidence intervals for an estimate: normal (CLT), Poisson bootstrap, empirical Bernstein.

- `normal`: value ± z·stderr. Cheap and, at the sample sizes OPE needs, well calibrated
  for the unbiased estimators; the default everywhere.
- `bootstrap`: percentile interval of a Poisson bootstrap (each row's weight ~ Poisson(1)).
  Weights are drawn as bytes and mapped through a 256-entry Poisson(1) quantile table, so a
  million rows × 200 replicates is one streamed matrix product rather than 200 resamples.
- `bernstein`: the empirical Bernstein bound of Maurer & Pontil (2009, thm. 4). A
  finite-sample bound for a mean of bounded terms: conservative, and the interval to use
  as a lower confidence bound ("ship only if it is better for sure").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import Literal

import numpy as np

IntervalKind = Literal["normal", "bootstrap", "bernstein"]
INTERVALS: tuple[str, ...] = ("normal", "bootstrap", "bernstein")

DEFAULT_BOOTSTRAP_SAMPLES = 200
_CHUNK = 4096  # rows per bootstrap block: the (replicates × rows) weight block stays in cache


def _poisson_table() -> np.ndarray:
    """Poisson(1) quantiles at the midpoints of 256 equal-probability cells."""
    cdf = np.cumsum([math.exp(-1.0) / math.factorial(k) for k in range(16)])
    u = (np.arange(256) + 0.5) / 256.0
    return np.searchsorted(cdf, u).astype(np.float32)


_POISSON_TABLE = _poisson_table()


def z_value(alpha: float) -> float:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    return NormalDist().inv_cdf(1.0 - alpha / 2.0)


def normal_interval(value: float, stderr: float, alpha: float) -> tuple[float, float]:
    half = z_value(alpha) * stderr
    return value - half, value + half


def poisson_bootstrap_sums(
    columns: Sequence[np.ndarray], n_boot: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Σ_i W_bi · column_i for b = 1..n_boot, and Σ_i W_bi, with W_bi ~ Poisson(1).

    `columns` are (n, m_k) blocks over the same n rows; the result is
    ((n_boot, Σ m_k), (n_boot,)). Every statistic built from these columns shares the same
    replicates, so several estimators bootstrap together.
    """
    n = columns[0].shape[0]
    width = sum(c.shape[1] for c in columns)
    # float32 with a trailing column of ones: the weight totals come out of the same product.
    stacked = np.empty((n, width + 1), dtype=np.float32)
    start = 0
    for block in columns:
        stacked[:, start : start + block.shape[1]] = block
        start += block.shape[1]
    stacked[:, width] = 1.0
    sums = np.zeros((n_boot, width + 1), dtype=np.float64)
    for begin in range(0, n, _CHUNK):
        block = stacked[begin : begin + _CHUNK]
        codes = np.frombuffer(rng.bytes(n_boot * block.shape[0]), dtype=np.uint8)
        weights = _POISSON_TABLE.take(codes.reshape(n_boot, block.shape[0]), mode="clip")
        sums += weights @ block
    return sums[:, :width], sums[:, width]


def percentile_interval(replicates: np.ndarray, alpha: float) -> tuple[float, float]:
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return math.nan, math.nan
    lo, hi = np.quantile(finite, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(lo), float(hi)


def bernstein_interval(
    observations: np.ndarray, alpha: float, value_range: tuple[float, float] | None = None
) -> tuple[float, float]:
    """Maurer–Pontil empirical Bernstein interval for the mean of `observations`.

    Each side holds with probability ≥ 1 − alpha/2 when every observation lies in
    `value_range` (by default the observed min and max, which is exact whenever the log
    already contains the extreme terms, e.g. the largest importance weight with the best reward).
    """
    x = np.asarray(observations, dtype=np.float64)
    n = x.size
    if n < 2:
        return -math.inf, math.inf
    lo_range, hi_range = (
        value_range if value_range is not None else (float(x.min()), float(x.max()))
    )
    span = max(hi_range - lo_range, 0.0)
    log_term = math.log(4.0 / alpha)  # ln(2/δ) with δ = alpha/2 per side
    mean = float(x.mean())
    var = float(x.var(ddof=1))
    half = math.sqrt(2.0 * var * log_term / n) + 7.0 * span * log_term / (3.0 * (n - 1))
    return mean - half, mean + half
