"""Linear contextual bandits in numpy: LinUCB and linear Thompson sampling.

Both keep A⁻¹ (A = ridge·I + Σ xxᵀ) by Sherman–Morrison, so an update costs O(d²).
Features are `FeatureSet.hashed(dim)`: action features and context × action crosses.
"""

from __future__ import annotations

from typing import Self

import numpy as np

from ..config import LinTSConfig, LinUCBConfig
from ..features import FeatureSet, Interaction
from .base import Policy, argmax_set, load_arrays, save_arrays


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
        self._changed()

    def _changed(self) -> None:
        pass

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

    def pmf(self, x: FeatureSet, seed: int) -> np.ndarray:
        X = x.hashed(self.config.dim)
        width = np.sqrt(np.einsum("ij,jk,ik->i", X, self.a_inv, X).clip(min=0.0))
        return argmax_set(X @ self.theta + self.config.alpha * width)


class LinTSPolicy(_RidgeState):
    """Thompson sampling; its pmf is the share of posterior draws each action wins.

    The draws are seeded by the event, so the reported probability is the one the
    action was really chosen with (the engine samples from this pmf).
    """

    kind = "lin_ts"

    def __init__(self, config: LinTSConfig) -> None:
        super().__init__(config)
        self._chol: np.ndarray | None = None

    def _changed(self) -> None:
        self._chol = None

    def _factor(self) -> np.ndarray:
        if self._chol is None:
            cov = (self.a_inv + self.a_inv.T) / 2.0
            try:
                self._chol = np.linalg.cholesky(cov)
            except np.linalg.LinAlgError:  # rounding made it indefinite: use the PSD part
                w, v = np.linalg.eigh(cov)
                self._chol = v * np.sqrt(w.clip(min=0.0))
        return self._chol

    def pmf(self, x: FeatureSet, seed: int) -> np.ndarray:
        X = x.hashed(self.config.dim)
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((self.config.dim, self.config.samples))
        thetas = self.theta[:, None] + self.config.v * (self._factor() @ z)
        winners = np.argmax(X @ thetas, axis=0)
        return np.bincount(winners, minlength=len(x)) / self.config.samples
