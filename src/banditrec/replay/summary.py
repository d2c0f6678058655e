"""From per-row estimator terms to an estimate with a standard error and an interval.

Every estimator here is a (stratified) ratio of sums over logged rows:

    V = Σ_s (N_s / D) · (Σ_{rows in s} num) / (Σ_{rows in s} den)

with D decisions, strata s = slots and N_s the rows of slot s. A plain mean (IPS, DM, DR)
has den = 1 and one stratum; self-normalized ones (SNIPS, SNDR) have den = importance
weight; a multi-slot app sums its slots' values, each slot's rows forming one stratum and
all slots of a decision resampled together. One formula therefore gives every estimator its
linearized (delta-method) standard error, its bootstrap replicates and its Bernstein bound.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

from .intervals import (
    DEFAULT_BOOTSTRAP_SAMPLES,
    INTERVALS,
    IntervalKind,
    bernstein_interval,
    normal_interval,
    percentile_interval,
    poisson_bootstrap_sums,
)


@dataclass(frozen=True, slots=True)
class Estimate:
    """An estimated policy value with its standard error and a (1 − alpha) interval."""

    value: float
    stderr: float
    ci_low: float
    ci_high: float
    method: str
    interval: str = "normal"
    n: int = 0
    alpha: float = 0.05

    def to_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Terms:
    """Per-row numerator (and denominator, None = 1) of an estimator; see the module doc.

    `group` (decision index per row) and `stratum` (slot index per row) are None for a
    single-slot log, where each row is its own decision.
    """

    num: np.ndarray
    den: np.ndarray | None = None
    group: np.ndarray | None = None
    stratum: np.ndarray | None = None


@dataclass(frozen=True, slots=True)
class _Columns:
    """Per-decision sums [num_s, den_s, rows_s for each stratum s] of one estimator.

    Columns that are 1 for every decision (a plain mean's den and row count) are not stored:
    `layout[j]` is column j's index in `values`, or −1 for a column of ones.
    """

    values: np.ndarray
    layout: np.ndarray

    @property
    def n(self) -> int:
        return self.values.shape[0]

    def expand(self, sums: np.ndarray, ones: np.ndarray | float) -> np.ndarray:
        """(…, 3·S) full column sums from sums of the stored columns and of a ones column."""
        ones = np.asarray(ones, dtype=np.float64)[..., None]
        return np.where(self.layout >= 0, sums[..., np.maximum(self.layout, 0)], ones)


def _decision_columns(t: Terms) -> _Columns:
    num = np.asarray(t.num, dtype=np.float64)
    if t.group is None and t.stratum is None:
        if t.den is None:
            return _Columns(num[:, None], np.array([0, -1, -1]))
        return _Columns(np.column_stack([num, t.den]), np.array([0, 1, -1]))
    den = np.ones_like(num) if t.den is None else np.asarray(t.den, dtype=np.float64)
    n = num.size
    group = np.arange(n) if t.group is None else np.asarray(t.group)
    stratum = np.zeros(n, dtype=np.intp) if t.stratum is None else np.asarray(t.stratum)
    n_groups = int(group.max()) + 1 if n else 0
    n_strata = int(stratum.max()) + 1 if n else 1
    cols = []
    for s in range(n_strata):
        rows = stratum == s
        g = group[rows]
        cols += [
            np.bincount(g, num[rows], minlength=n_groups),
            np.bincount(g, den[rows], minlength=n_groups),
            np.bincount(g, minlength=n_groups).astype(np.float64),
        ]
    return _Columns(np.column_stack(cols), np.arange(3 * n_strata))


def _value(sums: np.ndarray, n_decisions: np.ndarray | float) -> np.ndarray:
    """V from column sums shaped (..., 3·S) and the decision count(s)."""
    a, b, c = sums[..., 0::3], sums[..., 1::3], sums[..., 2::3]
    d = np.asarray(n_decisions, dtype=np.float64)[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(b != 0.0, a / b, 0.0)
        share = np.where(d > 0.0, c / d, 0.0)
    return (share * ratio).sum(axis=-1)


def _influence(cols: _Columns) -> tuple[float, np.ndarray]:
    """The value and each decision's linearized contribution to it (mean zero)."""
    stored_means = cols.values.mean(axis=0)
    means = cols.expand(stored_means, 1.0)
    a, b, c = means[0::3], means[1::3], means[2::3]
    safe_b = np.where(b != 0.0, b, 1.0)
    ratio = np.where(b != 0.0, a / safe_b, 0.0)
    value = float((c * ratio).sum())
    # ψ_d = Σ_s (c_sd − c̄_s)·ratio_s + (a_sd − ā_s)·c̄_s/b̄_s − (b_sd − b̄_s)·c̄_s·ratio_s/b̄_s:
    # linear in the columns, so one matrix-vector product (ones columns contribute nothing).
    coef = np.empty(means.size)
    coef[0::3], coef[1::3], coef[2::3] = c / safe_b, -c * ratio / safe_b, ratio
    stored = cols.layout >= 0
    weights = np.zeros(cols.values.shape[1])
    weights[cols.layout[stored]] = coef[stored]
    psi = cols.values @ weights - stored_means @ weights
    return value, psi


def summarize(
    terms: Mapping[str, Terms],
    *,
    interval: IntervalKind = "normal",
    alpha: float = 0.05,
    n_boot: int = DEFAULT_BOOTSTRAP_SAMPLES,
    rng: np.random.Generator | int | None = None,
    value_ranges: Mapping[str, tuple[float, float]] | None = None,
) -> dict[str, Estimate]:
    """An `Estimate` per named `Terms`; bootstrap replicates are shared by all of them."""
    if interval not in INTERVALS:
        raise ValueError(f"interval must be one of {INTERVALS}, got {interval!r}")
    built = {name: _decision_columns(t) for name, t in terms.items()}
    out: dict[str, Estimate] = {}
    bounds: dict[str, tuple[float, float]] = {}
    for name, cols in built.items():
        n = cols.n
        if n == 0:
            raise ValueError(f"{name}: no logged rows to estimate from")
        value, psi = _influence(cols)
        stderr = float(psi.std(ddof=1) / math.sqrt(n)) if n > 1 else math.inf
        if interval == "normal":
            bounds[name] = normal_interval(value, stderr, alpha)
        elif interval == "bernstein":
            given = (value_ranges or {}).get(name)
            bounds[name] = bernstein_interval(value + psi, alpha, given)
        out[name] = Estimate(value, stderr, math.nan, math.nan, name, interval, n, alpha)
    if interval == "bootstrap":
        bounds = _bootstrap_bounds(built, alpha, n_boot, rng)
    return {
        name: Estimate(e.value, e.stderr, *bounds[name], e.method, e.interval, e.n, e.alpha)
        for name, e in out.items()
    }


def _bootstrap_bounds(
    built: Mapping[str, _Columns],
    alpha: float,
    n_boot: int,
    rng: np.random.Generator | int | None,
) -> dict[str, tuple[float, float]]:
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    by_size: dict[int, list[str]] = {}
    for name, cols in built.items():
        by_size.setdefault(cols.n, []).append(name)
    bounds = {}
    for names in by_size.values():  # one pass per decision count (single- and multi-slot differ)
        sums, totals = poisson_bootstrap_sums(
            [built[name].values for name in names], n_boot, generator
        )
        start = 0
        for name in names:
            cols = built[name]
            width = cols.values.shape[1]
            replicates = _value(cols.expand(sums[:, start : start + width], totals), totals)
            bounds[name] = percentile_interval(replicates, alpha)
            start += width
    return bounds
