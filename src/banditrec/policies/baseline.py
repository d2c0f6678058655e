"""Baselines: uniform random, and the fixed default action (what apprentice mode serves)."""

from __future__ import annotations

from typing import Self

import numpy as np

from ..decision.features import FeatureSet, Interaction
from ..policy_config import FixedConfig, UniformConfig
from .base import Policy


class _Stateless(Policy):
    def learn(self, it: Interaction) -> None:
        self.n_learned += 1

    def to_bytes(self) -> bytes:
        return b""

    @classmethod
    def from_bytes(cls, config, data: bytes) -> Self:
        return cls(config)


class UniformPolicy(_Stateless):
    kind = "uniform"

    def __init__(self, config: UniformConfig | None = None) -> None:
        super().__init__(config or UniformConfig())

    def pmf(self, x: FeatureSet, seed: int) -> np.ndarray:
        return np.full(len(x), 1.0 / len(x))


class FixedPolicy(_Stateless):
    """The configured action when offered, else the first one."""

    kind = "fixed"

    def __init__(self, config: FixedConfig | None = None) -> None:
        super().__init__(config or FixedConfig())

    def pmf(self, x: FeatureSet, seed: int) -> np.ndarray:
        out = np.zeros(len(x))
        target = self.config.action_id
        out[x.action_ids.index(target) if target in x.action_ids else 0] = 1.0
        return out
