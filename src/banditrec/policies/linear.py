"""Linear contextual bandits in numpy: LinUCB and linear Thompson sampling.

Both keep A⁻¹ (A = ridge·I + Σ xxᵀ) by Sherman–Morrison, so an update costs O(d²).
Features are `FeatureSet.hashed(dim)`: action features and context × action crosses.
"""

from __future__ import annotations

import math
from typing import Self

import numpy as np

from ..decision.features import FeatureSet, Interaction
from ..policy_config import LinTSConfig, LinUCBConfig
from .base import Policy, argmax_set, load_arrays, save_arrays

_TIE_ATOL = 1e-12  # scores this close to the best are a tie


class _RidgeState(Policy):
    def __init__(self, config: LinUCBConfig | LinTSConfig) -> None:
        super().__init__(config)
        d = config.dim
        self.a_inv = np.eye(d) / config.ridge
        self.b = np.zeros(d)
        self.theta = np.zeros(d)

    def learn(self, it: Interaction) -> None:
        x = it.features.hashed(self.config.dim)[it.chosen]
        ax = self.a_inv @ x
        self.a_inv -= np.outer(ax, ax) / (1.0 + x @ ax)
        self.b += it.reward * x
        self.theta = self.a_inv @ self.b
        self.n_learned += 1

    def to_bytes(self) -> bytes:
        return save_arrays(a_inv=self.a_inv, b=self.b, n_learned=self.n_learned)

    @classmethod
    def from_bytes(cls, config: LinUCBConfig | LinTSConfig, data: bytes) -> Self:
        arrays = load_arrays(data)
        if arrays["a_inv"].shape != (config.dim, config.dim):
            raise ValueError(f"model has dim {arrays['a_inv'].shape[0]}, config says {config.dim}")
        policy = cls(config)
        policy.a_inv = arrays["a_inv"].copy()
        policy.b = arrays["b"].copy()
        policy.theta = policy.a_inv @ policy.b
        policy.n_learned = int(arrays["n_learned"])
        return policy


class LinUCBPolicy(_RidgeState):
    """Greedy on the upper confidence bound; ties share the mass."""

    kind = "linucb"

    def _scores(self, x: FeatureSet) -> np.ndarray:
        X = x.hashed(self.config.dim)
        # np.maximum(·, 0) is what .clip(min=0) runs, without its Python dispatch
        width = np.sqrt(np.maximum(((X @ self.a_inv) * X).sum(axis=1), 0.0))
        return X @ self.theta + self.config.alpha * width

    def pmf(self, x: FeatureSet, seed: int) -> np.ndarray:
        return argmax_set(self._scores(x), _TIE_ATOL)

    def probabilities(self, x: FeatureSet, seed: int) -> list[float]:
        """`pmf(x).tolist()`, with the tie set found in plain Python (fewer numpy calls)."""
        scores = self._scores(x).tolist()
        if math.isnan(sum(scores)):  # NaN (or inf - inf): numpy's max and ties, as in pmf
            return argmax_set(np.array(scores), _TIE_ATOL).tolist()
        cut = max(scores) - _TIE_ATOL
        best = [s >= cut for s in scores]
        share = 1 / sum(best)
        return [share if b else 0.0 for b in best]


class LinTSPolicy(_RidgeState):
    """Thompson sampling; its pmf is the share of posterior draws each action wins.

    θ ~ N(θ̂, v²A⁻¹) makes the K scores Xθ jointly Gaussian, N(Xθ̂, v²XA⁻¹Xᵀ), so the draws
    are taken in K dimensions (no d × d factorization per decision). They are seeded by
    the event, so the reported probability is the one the action was chosen with.
    """

    kind = "lin_ts"

    def pmf(self, x: FeatureSet, seed: int) -> np.ndarray:
        X = x.hashed(self.config.dim)
        cov = X @ self.a_inv @ X.T
        cov = (cov + cov.T) / 2.0 + 1e-9 * np.eye(len(x))
        try:
            factor = np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:  # rounding made it indefinite: use its PSD part
            w, v = np.linalg.eigh(cov)
            factor = v * np.sqrt(w.clip(min=0.0))
        z = np.random.default_rng(seed).standard_normal((len(x), self.config.samples))
        scores = (X @ self.theta)[:, None] + self.config.v * (factor @ z)
        winners = np.argmax(scores, axis=0)
        return np.bincount(winners, minlength=len(x)) / self.config.samples
