"""Shaping a policy's pmf before it is sampled: normalization, extra exploration, the floor."""

from __future__ import annotations

import numpy as np


def normalize(pmf: np.ndarray) -> np.ndarray:
    """Non-negative, sums to 1; an all-zero or non-finite pmf becomes uniform."""
    p = np.asarray(pmf, dtype=np.float64)
    p = np.where(np.isfinite(p) & (p > 0.0), p, 0.0)
    total = p.sum()
    if total <= 0.0:
        return np.full(p.shape, 1.0 / p.size)
    return p / total


def mix_uniform(pmf: np.ndarray, epsilon: float) -> np.ndarray:
    """(1 − ε)·pmf + ε·uniform."""
    if epsilon <= 0.0:
        return pmf
    return (1.0 - epsilon) * pmf + epsilon / pmf.size


def apply_floor(pmf: np.ndarray, floor: float) -> np.ndarray:
    """Smallest uniform mixing that lifts every probability to at least `floor`.

    Mixing (rather than clipping) keeps the order of the actions and changes nothing when
    the floor already holds. A floor above 1/K is capped at uniform.
    """
    k = pmf.size
    floor = min(floor, 1.0 / k)
    low = float(pmf.min())
    if low >= floor:
        return pmf
    lam = (floor - low) / (1.0 / k - low)
    out = (1.0 - lam) * pmf + lam / k
    return out / out.sum()


def one_hot(k: int, index: int) -> np.ndarray:
    p = np.zeros(k)
    p[index] = 1.0
    return p


def ranking_order(pmf: np.ndarray, chosen: int) -> list[int]:
    """The chosen action first, then the rest by probability (ties keep offered order)."""
    rest = [int(i) for i in np.argsort(-pmf, kind="stable") if i != chosen]
    return [chosen, *rest]
