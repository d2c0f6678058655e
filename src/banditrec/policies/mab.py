"""Non-contextual bandits for small action sets (channel, send hour): per-action statistics.

Statistics are keyed by action id, so actions may come and go between requests; an
action never seen before starts from the prior.
"""

from __future__ import annotations

from typing import Self

import numpy as np

from ..decision.features import FeatureSet, Interaction
from ..policy_config import EpsilonGreedyMABConfig, ThompsonConfig, UCB1Config
from .base import Policy, argmax_set, load_arrays, save_arrays


class _ArmStats(Policy):
    def __init__(self, config: EpsilonGreedyMABConfig | UCB1Config | ThompsonConfig) -> None:
        super().__init__(config)
        self._index: dict[str, int] = {}
        self.counts = np.zeros(0)
        self.sums = np.zeros(0)
        self.sumsq = np.zeros(0)

    def _rows(self, ids: list[str]) -> np.ndarray:
        rows = [self._index.get(a, -1) for a in ids]
        return np.asarray(rows, dtype=np.intp)

    def stats(self, ids: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(count, sum, sum of squares) per offered action; zeros for unseen ones."""
        rows = self._rows(ids)
        seen = rows >= 0
        n, s, q = (np.zeros(len(ids)) for _ in range(3))
        n[seen], s[seen], q[seen] = (
            self.counts[rows[seen]],
            self.sums[rows[seen]],
            self.sumsq[rows[seen]],
        )
        return n, s, q

    def learn(self, it: Interaction) -> None:
        action = it.features.action_ids[it.chosen]
        row = self._index.get(action)
        if row is None:
            row = self._index[action] = len(self._index)
            self.counts, self.sums, self.sumsq = (
                np.append(a, 0.0) for a in (self.counts, self.sums, self.sumsq)
            )
        self.counts[row] += 1.0
        self.sums[row] += it.reward
        self.sumsq[row] += it.reward * it.reward
        self.n_learned += 1

    def to_bytes(self) -> bytes:
        ids = np.array(sorted(self._index, key=self._index.__getitem__), dtype=np.str_)
        return save_arrays(
            ids=ids, counts=self.counts, sums=self.sums, sumsq=self.sumsq, n_learned=self.n_learned
        )

    @classmethod
    def from_bytes(cls, config, data: bytes) -> Self:
        arrays = load_arrays(data)
        policy = cls(config)
        policy._index = {str(a): i for i, a in enumerate(arrays["ids"])}
        policy.counts = arrays["counts"].astype(float)
        policy.sums = arrays["sums"].astype(float)
        policy.sumsq = arrays["sumsq"].astype(float)
        policy.n_learned = int(arrays["n_learned"])
        return policy


class EpsilonGreedyMAB(_ArmStats):
    kind = "mab_epsilon"

    def pmf(self, x: FeatureSet, seed: int) -> np.ndarray:
        n, s, _ = self.stats(x.action_ids)
        means = np.divide(s, n, out=np.zeros_like(s), where=n > 0)
        eps = self.config.epsilon
        return (1.0 - eps) * argmax_set(means) + eps / len(x)


class UCB1(_ArmStats):
    """Unseen actions first (shared uniformly), then mean + sqrt(c·ln t / n)."""

    kind = "ucb1"

    def pmf(self, x: FeatureSet, seed: int) -> np.ndarray:
        n, s, _ = self.stats(x.action_ids)
        if (n == 0).any():
            return (n == 0) / (n == 0).sum()
        t = n.sum()
        return argmax_set(s / n + np.sqrt(self.config.c * np.log(t) / n))


class Thompson(_ArmStats):
    """Beta–Bernoulli (rewards in [0, 1]) or Gaussian posterior; pmf = share of draws won."""

    kind = "thompson"

    def pmf(self, x: FeatureSet, seed: int) -> np.ndarray:
        n, s, q = self.stats(x.action_ids)
        cfg = self.config
        rng = np.random.default_rng(seed)
        shape = (cfg.samples, len(x))
        if cfg.likelihood == "beta":
            draws = rng.beta(
                cfg.prior_alpha + s, cfg.prior_beta + (n - s).clip(min=0.0), size=shape
            )
        else:
            mean = s / (n + 1.0)
            var = np.divide(q - s * s / np.maximum(n, 1.0), np.maximum(n - 1.0, 1.0))
            var = np.where(n > 1, var, 1.0).clip(min=1e-6)
            draws = rng.normal(mean, np.sqrt(var / (n + 1.0)), size=shape)
        winners = np.argmax(draws, axis=1)
        return np.bincount(winners, minlength=len(x)) / cfg.samples

    def learn(self, it: Interaction) -> None:
        if self.config.likelihood == "beta" and not 0.0 <= it.reward <= 1.0:
            raise ValueError(f"Beta Thompson sampling needs rewards in [0, 1], got {it.reward}")
        super().learn(it)
