"""The one interface every policy implements, whoever calls it: serving, simulation, OPE."""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Self

import numpy as np

from ..decision.features import FeatureSet, Interaction


class Policy(ABC):
    """A pmf over the offered actions, an online update, and model bytes.

    `pmf` returns the policy's own distribution, before the app's floor and any
    per-request exploration are applied (the engine does that, for every policy alike).
    `seed` is the event's seed; only randomized policies (Thompson sampling) use it, so
    their pmf, too, is a pure function of the model and the event.
    """

    kind: ClassVar[str]

    def __init__(self, config: Any) -> None:
        self.config = config
        self.n_learned = 0  # events learned by this object since it was built or loaded

    @abstractmethod
    def pmf(self, x: FeatureSet, seed: int) -> np.ndarray: ...

    def probabilities(self, x: FeatureSet, seed: int) -> list[float]:
        """`pmf` as a list of floats, for the decision path (which shapes it in pure Python).

        A policy whose pmf is naturally a list overrides this to skip the array round trip.
        """
        return np.asarray(self.pmf(x, seed), dtype=np.float64).tolist()

    @abstractmethod
    def learn(self, it: Interaction) -> None: ...

    @abstractmethod
    def to_bytes(self) -> bytes: ...

    @classmethod
    @abstractmethod
    def from_bytes(cls, config: Any, data: bytes) -> Self: ...

    def reconfigured(self, config: Any) -> Policy:
        """The same learned state under new settings (e.g. another exploration rate)."""
        return type(self).from_bytes(config, self.to_bytes())


def argmax_set(scores: np.ndarray, atol: float = 1e-12) -> np.ndarray:
    """Uniform pmf over the actions tied for the best score."""
    best = scores >= scores.max() - atol
    return best / best.sum()


def save_arrays(**arrays: np.ndarray | int | float) -> bytes:
    """numpy's own format, never pickle: model bytes may travel between machines."""
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return buf.getvalue()


def load_arrays(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}
