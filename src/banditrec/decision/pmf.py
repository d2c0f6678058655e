"""Shaping a policy's pmf before it is sampled: normalization, extra exploration, the floor.

Two forms of the same steps: on numpy arrays (`normalize`, `mix_uniform`, `apply_floor`),
and on plain lists of floats (`normalized`, `mixed_uniform`, `floored`), which the
decision path uses: a decision has a handful of actions, and numpy's per-call overhead on
a 10-element array costs more than the arithmetic. The list forms do the same IEEE
operations in the same order as the numpy ones (sums included, see `sum_like_numpy`), so
their results are bit-for-bit equal (tests/test_pmf_sampling.py holds them to it): served
probabilities and logged records do not depend on which form computed them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .schema import ExplorationOverride


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


# --- the same on lists of floats (the decision path) ----------------------------------

# numpy sums a contiguous float64 array pairwise: 8 running partial sums over a block of
# at most this many elements (PW_BLOCKSIZE in numpy's umath loops_utils.h.src).
_PAIRWISE_BLOCK = 128


def sum_like_numpy(values: Sequence[float]) -> float:
    """`float(np.sum(np.asarray(values, dtype=np.float64)))`, bit for bit, without numpy.

    Not Python's `sum` (compensated since 3.12) nor `math.fsum` (exactly rounded): either
    can differ from numpy in the last bit. Beyond one pairwise block numpy recurses; that
    rare case is left to numpy itself.
    """
    n = len(values)
    if n < 8:
        total = 0.0
        for v in values:
            total += v
        return total
    if n > _PAIRWISE_BLOCK:
        return float(np.sum(np.asarray(values, dtype=np.float64)))
    r0, r1, r2, r3, r4, r5, r6, r7 = values[:8]
    stop = n - n % 8
    for i in range(8, stop, 8):
        r0 += values[i]
        r1 += values[i + 1]
        r2 += values[i + 2]
        r3 += values[i + 3]
        r4 += values[i + 4]
        r5 += values[i + 5]
        r6 += values[i + 6]
        r7 += values[i + 7]
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for i in range(stop, n):
        total += values[i]
    return 0.0 + total  # numpy adds the block's sum to its 0.0 start (-0.0 becomes 0.0)


def normalized(pmf: Sequence[float]) -> list[float]:
    """`normalize` on a list of floats."""
    p = [v if 0.0 < v < math.inf else 0.0 for v in pmf]  # NaN fails both comparisons
    total = sum_like_numpy(p)
    if total <= 0.0:
        return [1.0 / len(p)] * len(p)
    return [v / total for v in p]


def mixed_uniform(pmf: list[float], epsilon: float) -> list[float]:
    """`mix_uniform` on a list of floats."""
    if epsilon <= 0.0:
        return pmf
    keep, spread = 1.0 - epsilon, epsilon / len(pmf)
    return [keep * v + spread for v in pmf]


def floored(pmf: list[float], floor: float) -> list[float]:
    """`apply_floor` on a list of finite floats (a `normalized` one)."""
    k = len(pmf)
    floor = min(floor, 1.0 / k)
    low = min(pmf)
    if low >= floor:
        return pmf
    lam = (floor - low) / (1.0 / k - low)
    keep, spread = 1.0 - lam, lam / k
    out = [keep * v + spread for v in pmf]
    total = sum_like_numpy(out)
    return [v / total for v in out]


def shaped(
    pmf: Sequence[float],
    floor: float,
    exploration: ExplorationOverride | None = None,
    exposure: Callable[[list[float]], list[float]] | None = None,
) -> list[float]:
    """A policy's pmf as it is served: `normalized`, the request's extra exploration
    (`mixed_uniform`), `exposure` when given (a slate position's exposure floors), then
    `floored` at `floor`, or at the request's own floor when it sets one."""
    p = normalized(pmf)
    if exploration is not None:
        if exploration.epsilon is not None:
            p = mixed_uniform(p, exploration.epsilon)
        if exploration.min_probability is not None:
            floor = exploration.min_probability
    if exposure is not None:
        p = exposure(p)
    return floored(p, floor)


def ranking_order(pmf: np.ndarray | Sequence[float], chosen: int) -> list[int]:
    """The chosen action first, then the rest by probability (ties keep offered order)."""
    p = pmf.tolist() if isinstance(pmf, np.ndarray) else pmf
    # sorted() is stable, reverse=True included: equal probabilities keep their offered
    # order, as a stable argsort of −pmf does.
    rest = [i for i in sorted(range(len(p)), key=p.__getitem__, reverse=True) if i != chosen]
    return [chosen, *rest]
