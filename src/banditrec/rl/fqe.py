"""Fitted-Q evaluation (Le, Voloshin & Yue 2019) with a linear model on polynomial features.

Q(s, a) = φ(s)ᵀ θ_a, φ = standardized state features, their squares and pairwise products,
and a bias. Each iteration regresses, for every logged step,

    y = r + γ Σ_a' π(a'|s') Q(s', a')      (y = r at a trajectory's last step)

on φ(s) for the logged action (ridge, per action). The design matrices do not change
between iterations, so each action's ridge solve is factored once and an iteration costs two
matrix products; a fit is cheap enough to be redone inside every bootstrap replicate, which
is how the intervals of FQE and DR account for the model's own variance. It runs for as many
iterations as the longest trajectory (the exact number for a finite horizon) unless the
coefficients settle sooner; bootstrapped values are kept within horizon × the reward range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_factor, cho_solve


@dataclass(frozen=True)
class FQESettings:
    degree: int = 2
    ridge: float = 1e-3
    """Penalty per unit of (bootstrap) weight on every coefficient but the bias."""
    max_iterations: int | None = None
    """None: the longest trajectory's length."""
    tolerance: float = 1e-7


@dataclass(frozen=True)
class PolynomialFeatures:
    mean: np.ndarray
    scale: np.ndarray
    degree: int

    @classmethod
    def fit(cls, obs: np.ndarray, degree: int) -> PolynomialFeatures:
        if degree not in (1, 2):
            raise ValueError(f"FQE features support degree 1 or 2, got {degree}")
        mean = obs.mean(axis=0)
        scale = obs.std(axis=0)
        return cls(mean, np.where(scale > 1e-9, scale, 1.0), degree)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        z = (obs - self.mean) / self.scale
        parts = [np.ones((len(z), 1)), z]
        if self.degree == 2:
            i, j = np.triu_indices(z.shape[1])
            parts.append(z[:, i] * z[:, j])
        return np.hstack(parts)


@dataclass(frozen=True)
class FittedQ:
    features: PolynomialFeatures
    theta: np.ndarray
    """(F, A) coefficients per action."""
    iterations: int

    def q(self, obs: np.ndarray) -> np.ndarray:
        """(..., A) Q-values for (..., d) states."""
        flat = obs.reshape(-1, obs.shape[-1])
        return (self.features(flat) @ self.theta).reshape(*obs.shape[:-1], self.theta.shape[1])


@dataclass(frozen=True)
class FQEData:
    """The logged steps as FQE needs them, flattened over (trajectory, step)."""

    phi: np.ndarray  # (m, F) features of each step's state
    phi_next: np.ndarray  # (m, F) of the next state (0 at the last step)
    pi_next: np.ndarray  # (m, A) target pmf at the next state (0 at the last step)
    action: np.ndarray  # (m,)
    reward: np.ndarray  # (m,)
    trajectory: np.ndarray  # (m,) which trajectory each step belongs to
    n_actions: int
    horizon: int
    features: PolynomialFeatures


def fqe_data(
    obs: np.ndarray,
    action: np.ndarray,
    reward: np.ndarray,
    mask: np.ndarray,
    pi_e: np.ndarray,
    degree: int = 2,
) -> FQEData:
    """From (N, H[, d | A]) trajectory arrays padded after each end."""
    n, h = mask.shape
    features = PolynomialFeatures.fit(obs[mask], degree)
    has_next = np.zeros_like(mask)
    has_next[:, :-1] = mask[:, 1:]
    nxt_obs = np.zeros_like(obs)
    nxt_obs[:, :-1] = obs[:, 1:]
    nxt_pi = np.zeros_like(pi_e)
    nxt_pi[:, :-1] = pi_e[:, 1:]
    phi = features(obs[mask])
    phi_next = features(nxt_obs[mask]) * has_next[mask][:, None]
    return FQEData(
        phi=phi,
        phi_next=phi_next,
        pi_next=nxt_pi[mask] * has_next[mask][:, None],
        action=action[mask],
        reward=reward[mask],
        trajectory=np.broadcast_to(np.arange(n)[:, None], (n, h))[mask],
        n_actions=pi_e.shape[2],
        horizon=h,
        features=features,
    )


def fit_fqe(
    data: FQEData,
    discount: float = 1.0,
    settings: FQESettings | None = None,
    trajectory_weights: np.ndarray | None = None,
) -> FittedQ:
    """Fit Q^π by fitted-Q iteration; `trajectory_weights` (N,) weight whole trajectories
    (a bootstrap replicate)."""
    s = settings or FQESettings()
    m, f = data.phi.shape
    w = np.ones(m) if trajectory_weights is None else trajectory_weights[data.trajectory]
    penalty = np.full(f, s.ridge)
    penalty[0] = 1e-9  # the bias is not shrunk
    rows_of, factors = [], []
    for a in range(data.n_actions):
        rows = np.flatnonzero((data.action == a) & (w > 0))
        rows_of.append(rows)
        if rows.size == 0:
            factors.append(None)
            continue
        x = data.phi[rows]
        gram = x.T @ (x * w[rows, None]) + np.diag(penalty * max(w[rows].sum(), 1.0))
        factors.append(cho_factor(gram))
    theta = np.zeros((f, data.n_actions))
    weighted = [data.phi[r] * w[r, None] for r in rows_of]
    iterations = s.max_iterations or data.horizon
    # A return lies within horizon × the reward range: bootstrapped values outside it are
    # extrapolation (a target far from the logged actions), and are clipped before they
    # compound over the iterations.
    low = data.horizon * min(float(data.reward.min()), 0.0)
    high = data.horizon * max(float(data.reward.max()), 0.0)
    done = 0
    while done < iterations:
        done += 1
        v_next = np.einsum("ma,ma->m", data.phi_next @ theta, data.pi_next).clip(low, high)
        y = data.reward + discount * v_next
        new = np.zeros_like(theta)
        for a, rows in enumerate(rows_of):
            if factors[a] is not None:
                new[:, a] = cho_solve(factors[a], weighted[a].T @ y[rows])
        change = float(np.abs(new - theta).max())
        theta = new
        if change < s.tolerance:
            break
    return FittedQ(data.features, theta, done)
