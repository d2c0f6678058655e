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

import numpy as np

from .intervals import normal_interval
from .summary import Estimate

METHODS = ("independent", "cascade_ips", "cascade_dr", "slate_ips")


@dataclass(frozen=True, slots=True)
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
        p = np.asarray(self.pscore)
        if ((p <= 0) | (p > 1) | ~np.isfinite(p)).any():
            raise ValueError("pscore must be in (0, 1] at every position")
        t = np.asarray(self.target)
        if ((t < 0) | (t > 1) | ~np.isfinite(t)).any():
            raise ValueError("target probabilities must be in [0, 1] at every position")
        if not np.isfinite(self.reward).all():
            raise ValueError("reward must be finite at every position")

    @property
    def weights(self) -> np.ndarray:
        return np.asarray(self.target, dtype=np.float64) / self.pscore

    @property
    def prefix_weights(self) -> np.ndarray:
        return np.cumprod(self.weights, axis=1)


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
        before = np.empty_like(big_w)
        before[:, 0] = 1.0
        before[:, 1:] = big_w[:, :-1]
        return big_w * (r - q) + before * v
    if method == "slate_ips":
        out = np.zeros_like(r)
        out[:, -1] = big_w[:, -1] * r.sum(axis=1)
        return out
    raise ValueError(f"unknown slate estimator {method!r}; choose one of {', '.join(METHODS)}")


def estimate_slates(log: SlateLog, method: str = "cascade_dr", alpha: float = 0.05) -> SlateReport:
    """The slate value under the target with a normal (1 − alpha) interval."""
    terms = per_slate_terms(log, method)
    per_slate = terms.sum(axis=1)
    n = per_slate.shape[0]
    value = float(per_slate.mean()) if n else float("nan")
    stderr = float(per_slate.std(ddof=1) / np.sqrt(n)) if n > 1 else float("inf")
    low, high = normal_interval(value, stderr, alpha)
    big_w = log.prefix_weights
    ess = big_w.sum(axis=0) ** 2 / np.maximum((big_w**2).sum(axis=0), 1e-300)
    return SlateReport(
        Estimate(value, stderr, low, high, method, "normal", n, alpha),
        terms.mean(axis=0),
        ess,
        big_w.max(axis=0) if n else np.zeros(big_w.shape[1]),
    )
