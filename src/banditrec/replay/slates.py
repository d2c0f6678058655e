"""Off-policy evaluation of slates from their per-position conditional propensities.

Per logged slate i and position j (1 … k): the logged action a_ij, its logging
probability p_ij = μ(a_ij | x_i, a_i1 … a_i,j−1) (what the engine logs per position),
the target's π_ij = π(a_ij | x_i, the same prefix), the reward r_ij, the per-position
weight w_ij = π_ij / p_ij and the prefix weight W_ij = Π_{l ≤ j} w_il (W_i0 = 1).
The slate's value is Σ_j E[r_j]; every estimator is a mean over slates of a per-slate
term, so its normal interval is mean ± z·sd/√n.

| method       | per-slate term                                     | unbiased when                          |
| ------------ | -------------------------------------------------- | -------------------------------------- |
| independent  | Σ_j w_ij r_ij                                      | r_j depends on a_j only, and π's pmf at j does not depend on the prefix |
| cascade_ips  | Σ_j W_ij r_ij                                      | r_j depends on a_1 … a_j (cascade); always, given the logged prefix |
| cascade_dr   | Σ_j [W_ij (r_ij − q̂_ij) + W_i,j−1 v̂_ij]            | as cascade_ips; lower variance with a good q̂ |
| slate_ips    | W_ik Σ_j r_ij                                      | any reward (variance grows with k)     |

cascade_ips is the reward-interaction IPS of McInerney et al. (2020) / obp's RIPS;
cascade_dr is Cascade-DR (Kiyohara et al., WSDM 2022): q̂_ij estimates E[r_ij] for the
logged prefix and action, v̂_ij = Σ_a π(a | x_i, prefix) q̂(x_i, prefix, a, j).
Data quality per position: the effective sample size of the prefix weights,
(Σ W)² / Σ W², and the largest weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .intervals import normal_interval
from .summary import Estimate

METHODS = ("independent", "cascade_ips", "cascade_dr", "slate_ips")


@dataclass(frozen=True)
class SlateLog:
    """(n_slates, k) arrays: logging and target conditional probabilities, rewards."""

    pscore: np.ndarray
    target: np.ndarray
    reward: np.ndarray
    q_hat: np.ndarray | None = None
    v_hat: np.ndarray | None = None

    def __post_init__(self) -> None:
        shape = np.shape(self.reward)
        if len(shape) != 2:
            raise ValueError(f"reward must be (n_slates, positions); got shape {shape}")
        for name in ("pscore", "target", "q_hat", "v_hat"):
            value = getattr(self, name)
            if value is not None and np.shape(value) != shape:
                raise ValueError(f"{name} must have reward's shape {shape}; got {np.shape(value)}")
        # min/max: one pass each, and a NaN fails both comparisons
        p = np.asarray(self.pscore, dtype=np.float64)
        if p.size and not (p.min() > 0.0 and p.max() <= 1.0):
            raise ValueError("pscore must be in (0, 1] at every position")
        t = np.asarray(self.target, dtype=np.float64)
        if t.size and not (t.min() >= 0.0 and t.max() <= 1.0):
            raise ValueError("target probabilities must be in [0, 1] at every position")
        r = np.asarray(self.reward, dtype=np.float64)
        if r.size and not np.isfinite(r.sum()):
            raise ValueError("reward must be finite at every position")

    @cached_property
    def weights(self) -> np.ndarray:
        """w_ij = π_ij / p_ij."""
        return np.divide(self.target, self.pscore, dtype=np.float64)

    @cached_property
    def prefix_weights(self) -> np.ndarray:
        """W_ij = Π_{l ≤ j} w_il."""
        return np.cumprod(self.weights, axis=1)

    @cached_property
    def quality(self) -> tuple[np.ndarray, np.ndarray]:
        """Per position: the effective sample size (Σ W)² / Σ W² and the largest W."""
        big_w = self.prefix_weights
        if not big_w.shape[0]:
            return np.zeros(big_w.shape[1]), np.zeros(big_w.shape[1])
        ess = big_w.sum(axis=0) ** 2 / np.maximum(np.einsum("ij,ij->j", big_w, big_w), 1e-300)
        return ess, big_w.max(axis=0)


@dataclass(frozen=True, slots=True)
class SlateReport:
    """The slate value, each position's, and the data-quality figures per position."""

    estimate: Estimate
    per_position: np.ndarray
    ess: np.ndarray
    max_weight: np.ndarray


def per_slate_terms(log: SlateLog, method: str) -> np.ndarray:
    """(n_slates, k): each position's term of `method` (their row sum is the slate's)."""
    r = np.asarray(log.reward, dtype=np.float64)
    if method == "independent":
        return log.weights * r
    big_w = log.prefix_weights
    if method == "cascade_ips":
        return big_w * r
    if method == "cascade_dr":
        q = np.zeros_like(r) if log.q_hat is None else log.q_hat
        v = np.zeros_like(r) if log.v_hat is None else log.v_hat
        out = np.subtract(r, q)
        out *= big_w
        out[:, 0] += v[:, 0]
        correction = np.multiply(big_w[:, :-1], v[:, 1:])
        out[:, 1:] += correction
        return out
    if method == "slate_ips":
        out = np.zeros_like(r)
        out[:, -1] = big_w[:, -1] * r.sum(axis=1)
        return out
    raise ValueError(f"unknown slate estimator {method!r}; choose one of {', '.join(METHODS)}")


def estimate_slates(log: SlateLog, method: str = "cascade_dr", alpha: float = 0.05) -> SlateReport:
    """The slate value under the target with a normal (1 − alpha) interval."""
    terms = per_slate_terms(log, method)
    n = terms.shape[0]
    per_position = terms.mean(axis=0) if n else np.full(terms.shape[1], np.nan)
    per_slate = terms.sum(axis=1)
    value = float(per_position.sum())
    stderr = float(per_slate.std(ddof=1) / np.sqrt(n)) if n > 1 else float("inf")
    low, high = normal_interval(value, stderr, alpha)
    ess, max_weight = log.quality
    return SlateReport(
        Estimate(value, stderr, low, high, method, "normal", n, alpha),
        per_position,
        ess,
        max_weight,
    )
