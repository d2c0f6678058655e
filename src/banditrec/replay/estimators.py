"""Off-policy estimators over arrays of logged decisions, vectorized in numpy.

Notation, per logged row i: the logged action a_i with logging probability p_i (its
propensity), reward r_i, the target policy's pmf π(·|x_i) over the offered actions, the
importance weight w_i = π(a_i|x_i) / p_i and, for model-based estimators, a reward model
q̂(x_i, ·) (cross-fitted: see reward_model.py). With DM_i = Σ_a π(a|x_i) q̂(x_i, a):

| method      | row term                                  | notes                                   |
| ----------- | ----------------------------------------- | --------------------------------------- |
| ips         | w r                                       | unbiased                                |
| clipped_ips | min(w, M) r                               | biased down when weights exceed M       |
| snips       | w r / mean(w)                             | self-normalized, bias O(1/n)            |
| dm          | DM                                        | as good as the reward model             |
| dr          | DM + w (r − q̂(a))                         | unbiased, lower variance than IPS       |
| sndr        | DM + w (r − q̂(a)) / mean(w)               | self-normalized DR                      |
| switch_dr   | DM + 1{w ≤ τ} w (r − q̂(a))                | drops the correction where w > τ        |
| dr_os       | DM + λw/(w² + λ) (r − q̂(a))               | DR with optimistic shrinkage (Su 2020)  |

Switch-DR's τ and DR-OS's λ are chosen from the data by SLOPE (`slope`) unless given.
DR and SNDR read `q_hat_dr` when it is given (a q̂ fitted to make the DR correction's
variance small, `cross_fit(weighting="mrdr")`: More Robust DR, Farajtabar et al. 2018); DM,
Switch-DR and DR-OS, whose value leans on q̂ itself, read `q_hat` (fitted for prediction).
References: IPS (Horvitz & Thompson 1952), SNIPS (Swaminathan & Joachims 2015), DR (Dudík,
Langford & Li 2011), Switch-DR (Wang, Agarwal & Dudík 2017), DR-OS (Su et al. 2020).

Rows may carry a decision id and a slot (multi-slot apps); the estimate is then the sum
over slots of each slot's value, decisions resampled as a whole (see summary.py).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import ClassVar

import numpy as np

from .summary import Estimate, Terms, summarize

_PMF_TOLERANCE = 1e-6


@dataclass(frozen=True, eq=False)
class OPEData:
    """Arrays an estimator reads; validated once, with messages that say what to fix.

    pi_e and q_hat are (n, K): row i's offered actions first, zero-padded when rows offer
    fewer than K actions.
    """

    reward: np.ndarray
    action: np.ndarray
    pscore: np.ndarray
    pi_e: np.ndarray
    q_hat: np.ndarray | None = None
    group: np.ndarray | None = None
    stratum: np.ndarray | None = None
    q_hat_dr: np.ndarray | None = None
    """q̂ for DR and SNDR (see the module doc); None: they use `q_hat`."""
    _cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        r = np.asarray(self.reward, dtype=np.float64)
        a = np.asarray(self.action, dtype=np.intp)
        p = np.asarray(self.pscore, dtype=np.float64)
        pi = np.asarray(self.pi_e, dtype=np.float64)
        n = r.shape[0]
        if r.ndim != 1 or a.shape != (n,) or p.shape != (n,):
            raise ValueError(
                f"reward, action and pscore must be 1-d arrays of one length; got shapes "
                f"{r.shape}, {a.shape}, {p.shape}"
            )
        if pi.ndim != 2 or pi.shape[0] != n:
            raise ValueError(f"pi_e must be (n_rows, n_actions) = ({n}, K); got {pi.shape}")
        if not np.isfinite(r).all():
            raise ValueError(f"reward has {int((~np.isfinite(r)).sum())} non-finite values")
        if n and ((p <= 0.0) | (p > 1.0) | ~np.isfinite(p)).any():
            bad = int(np.flatnonzero((p <= 0.0) | (p > 1.0) | ~np.isfinite(p))[0])
            raise ValueError(f"pscore must be in (0, 1]; row {bad} has {p[bad]}")
        if n and ((a < 0) | (a >= pi.shape[1])).any():
            bad = int(np.flatnonzero((a < 0) | (a >= pi.shape[1]))[0])
            raise ValueError(
                f"action index {a[bad]} at row {bad} is outside pi_e's {pi.shape[1]} columns"
            )
        if n and ((pi < -_PMF_TOLERANCE).any() or np.abs(pi.sum(axis=1) - 1.0).max() > 1e-4):
            raise ValueError(
                "pi_e rows must be probability distributions (non-negative, summing to 1)"
            )
        object.__setattr__(self, "reward", r)
        object.__setattr__(self, "action", a)
        object.__setattr__(self, "pscore", p)
        object.__setattr__(self, "pi_e", pi)
        for name in ("q_hat", "q_hat_dr"):
            if getattr(self, name) is not None:
                q = np.asarray(getattr(self, name), dtype=np.float64)
                if q.shape != pi.shape:
                    raise ValueError(f"{name} must have pi_e's shape {pi.shape}; got {q.shape}")
                object.__setattr__(self, name, q)
        if self.q_hat_dr is not None and self.q_hat is None:
            raise ValueError("q_hat_dr is given without q_hat; pass q_hat (DM reads it)")
        for name in ("group", "stratum"):
            value = getattr(self, name)
            if value is not None:
                arr = np.asarray(value, dtype=np.intp)
                if arr.shape != (n,) or (n and arr.min() < 0):
                    raise ValueError(f"{name} must be {n} non-negative integer ids, one per row")
                object.__setattr__(self, name, arr)

    @property
    def n(self) -> int:
        return self.reward.shape[0]

    @cached_property
    def rows(self) -> np.ndarray:
        return np.arange(self.n)

    @cached_property
    def weight(self) -> np.ndarray:
        """w_i = π(a_i|x_i) / p_i."""
        return self.pi_e[self.rows, self.action] / self.pscore

    @cached_property
    def dm(self) -> np.ndarray:
        """DM_i = Σ_a π(a|x_i) q̂(x_i, a)."""
        return np.einsum("ij,ij->i", self.pi_e, self._q())

    @cached_property
    def residual(self) -> np.ndarray:
        """r_i − q̂(x_i, a_i)."""
        return self.reward - self._q()[self.rows, self.action]

    @cached_property
    def dm_dr(self) -> np.ndarray:
        """`dm` with `q_hat_dr` (DR's and SNDR's model) when given."""
        return self.dm if self.q_hat_dr is None else np.einsum("ij,ij->i", self.pi_e, self.q_hat_dr)

    @cached_property
    def residual_dr(self) -> np.ndarray:
        """`residual` with `q_hat_dr` when given."""
        if self.q_hat_dr is None:
            return self.residual
        return self.reward - self.q_hat_dr[self.rows, self.action]

    def _q(self) -> np.ndarray:
        if self.q_hat is None:
            raise ValueError(
                "this estimator needs a reward model: pass q_hat (see reward_model.py)"
            )
        return self.q_hat

    def terms(self, num: np.ndarray, den: np.ndarray | None = None) -> Terms:
        return Terms(num, den, self.group, self.stratum)


class Estimator(ABC):
    name: ClassVar[str]
    uses_reward_model: ClassVar[bool] = False
    uses_dr_model: ClassVar[bool] = False
    """Reads `OPEData.q_hat_dr` (a q̂ fitted for the DR correction) when given."""

    @abstractmethod
    def terms(self, d: OPEData) -> Terms: ...

    @property
    def label(self) -> str:
        return self.name

    def estimate(self, d: OPEData, **kwargs) -> Estimate:
        return summarize({self.label: self.terms(d)}, **kwargs)[self.label]


class OnPolicy(Estimator):
    """The logging policy's own value: the mean logged reward (no weighting)."""

    name = "on_policy"

    def terms(self, d: OPEData) -> Terms:
        return d.terms(d.reward)


class IPS(Estimator):
    name = "ips"

    def terms(self, d: OPEData) -> Terms:
        return d.terms(d.weight * d.reward)


@dataclass(frozen=True)
class ClippedIPS(Estimator):
    max_weight: float = 100.0
    name: ClassVar[str] = "clipped_ips"

    def __post_init__(self) -> None:
        if self.max_weight <= 0:
            raise ValueError(f"max_weight must be positive, got {self.max_weight}")

    def terms(self, d: OPEData) -> Terms:
        return d.terms(np.minimum(d.weight, self.max_weight) * d.reward)


class SNIPS(Estimator):
    name = "snips"

    def terms(self, d: OPEData) -> Terms:
        return d.terms(d.weight * d.reward, d.weight)


class DM(Estimator):
    name = "dm"
    uses_reward_model = True

    def terms(self, d: OPEData) -> Terms:
        return d.terms(d.dm)


class DR(Estimator):
    name = "dr"
    uses_reward_model = True
    uses_dr_model = True

    def terms(self, d: OPEData) -> Terms:
        return d.terms(d.dm_dr + d.weight * d.residual_dr)


class SNDR(Estimator):
    """mean(DM) + Σ w(r − q̂) / Σ w (per slot).

    Written as two strata per slot, a plain mean of DM and a ratio for the correction, so the
    standard error and the bootstrap carry the variability of both parts.
    """

    name = "sndr"
    uses_reward_model = True
    uses_dr_model = True

    def terms(self, d: OPEData) -> Terms:
        group = d.rows if d.group is None else d.group
        stratum = np.zeros(d.n, dtype=np.intp) if d.stratum is None else d.stratum
        return Terms(
            num=np.concatenate([d.dm_dr, d.weight * d.residual_dr]),
            den=np.concatenate([np.ones(d.n), d.weight]),
            group=np.concatenate([group, group]),
            stratum=np.concatenate([2 * stratum, 2 * stratum + 1]),
        )


SLOPE_GRID = (
    1.0,
    2.0,
    5.0,
    10.0,
    20.0,
    50.0,
    100.0,
    200.0,
    500.0,
    1000.0,
    5000.0,
    10_000.0,
    math.inf,
)
"""Candidate thresholds τ (Switch-DR) and shrinkages λ (DR-OS) that SLOPE chooses among."""


def slope(estimates: Sequence[float], widths: Sequence[float]) -> int:
    """SLOPE (Su, Srinath & Krishnamurthy 2020, with Tucker & Lee 2021's constant), as obp
    runs it: visit candidates from the widest confidence width (least bias) to the
    narrowest, keep going while each one's estimate θ_i stays within w_i + (√6 − 1)·w_j of
    every θ_j visited before, and return the index of the last one kept.

    >>> slope([1.0, 1.1, 3.0], [0.5, 0.2, 0.1])  # the narrowest one moved away: stop before it
    1
    """
    c = math.sqrt(6.0) - 1.0
    order = np.argsort(np.asarray(widths, dtype=np.float64), kind="stable")[::-1]
    kept: list[int] = []
    for i in order:
        if kept:
            theta = np.asarray([estimates[j] for j in kept])
            width = np.asarray([widths[j] for j in kept])
            if not (np.abs(theta - estimates[i]) <= widths[i] + c * width).all():
                break
        kept.append(int(i))
    return kept[-1]


def _t_width(terms: np.ndarray, delta: float = 0.05) -> float:
    """One-sided Student-t confidence width of the mean of per-row terms (obp's SLOPE)."""
    from scipy.stats import t as student_t

    n = terms.size
    if n < 2:
        return math.inf
    return float(student_t.ppf(1.0 - delta, n - 1) * terms.std(ddof=1) / math.sqrt(n))


@dataclass(frozen=True)
class _Tuned(Estimator):
    """A DR variant with one hyperparameter; None = chosen from the data by SLOPE over `grid`."""

    grid: tuple[float, ...] = field(default=SLOPE_GRID, kw_only=True)
    uses_reward_model: ClassVar[bool] = True

    @abstractmethod
    def _row_terms(self, d: OPEData, value: float) -> np.ndarray: ...

    @abstractmethod
    def _fixed(self) -> float | None: ...

    def select(self, d: OPEData) -> float:
        """The hyperparameter the estimate uses on these data (SLOPE when not fixed)."""
        fixed = self._fixed()
        if fixed is not None:
            return fixed
        rows = [self._row_terms(d, v) for v in self.grid]
        return self.grid[slope([r.mean() for r in rows], [_t_width(r) for r in rows])]

    def terms(self, d: OPEData) -> Terms:
        return d.terms(self._row_terms(d, self.select(d)))


@dataclass(frozen=True)
class SwitchDR(_Tuned):
    """Switch-DR (Wang, Agarwal & Dudík 2017): DM + 1{w ≤ τ}·w·(r − q̂(a)).

    The DR correction is dropped on rows whose weight exceeds τ, where the model alone
    speaks. τ = None (default) picks τ from `grid` by SLOPE; τ = ∞ is DR, τ → 0 is DM.
    """

    tau: float | None = None
    name: ClassVar[str] = "switch_dr"

    def __post_init__(self) -> None:
        if self.tau is not None and self.tau <= 0:
            raise ValueError(f"tau must be positive, got {self.tau}")

    def _fixed(self) -> float | None:
        return self.tau

    def _row_terms(self, d: OPEData, value: float) -> np.ndarray:
        return d.dm + np.where(d.weight <= value, d.weight * d.residual, 0.0)


@dataclass(frozen=True)
class DROS(_Tuned):
    """DR with optimistic shrinkage (Su, Dimakopoulou, Krishnamurthy & Dudík 2020):
    DM + λw/(w² + λ)·(r − q̂(a)).

    The weight is shrunk to λw/(w² + λ) (≤ w, ≈ w when w² ≪ λ). λ = None (default) picks λ
    from `grid` by SLOPE; λ = ∞ is DR, λ → 0 is DM.
    """

    lambda_: float | None = None
    name: ClassVar[str] = "dr_os"

    def __post_init__(self) -> None:
        if self.lambda_ is not None and self.lambda_ <= 0:
            raise ValueError(f"lambda_ must be positive, got {self.lambda_}")

    def _fixed(self) -> float | None:
        return self.lambda_

    def _row_terms(self, d: OPEData, value: float) -> np.ndarray:
        w = d.weight
        shrunk = w if math.isinf(value) else value * w / (w * w + value)
        return d.dm + shrunk * d.residual


def _single(estimator: Estimator):
    def run(data: OPEData, **kwargs) -> Estimate:
        return estimator.estimate(data, **kwargs)

    run.__name__ = estimator.name
    run.__doc__ = f"{estimator.name} estimate of the target policy's value (see module doc)."
    return run


ips = _single(IPS())
snips = _single(SNIPS())
dm = _single(DM())
dr = _single(DR())
sndr = _single(SNDR())


def clipped_ips(data: OPEData, max_weight: float = 100.0, **kwargs) -> Estimate:
    return ClippedIPS(max_weight).estimate(data, **kwargs)


def switch_dr(data: OPEData, tau: float | None = None, **kwargs) -> Estimate:
    return SwitchDR(tau=tau).estimate(data, **kwargs)


def dr_os(data: OPEData, lambda_: float | None = None, **kwargs) -> Estimate:
    return DROS(lambda_=lambda_).estimate(data, **kwargs)


def weight_diagnostics(data: OPEData) -> dict[str, float]:
    """Sanity checks on the importance weights: their mean should be ≈ 1 (when the target
    policy's support is covered), and the effective sample size says how many logged rows
    the estimate is really worth."""
    from .quality import weight_quality

    q = weight_quality(data.weight)
    return {"n": float(q.n), "mean_weight": q.mean_weight, "max_weight": q.max_weight, "ess": q.ess}
