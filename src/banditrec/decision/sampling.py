"""Reproducible draws: the draw for an event is a pure function of (app seed, event id).

The same request therefore gets the same decision on any replica, and a log can be
replayed exactly. blake2b is used instead of Python's `hash`, which is salted per process.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

_TWO_53 = float(1 << 53)


def event_seed(app_seed: int, event_id: str, slot: str | None = None) -> int:
    """64-bit seed for one event (and slot)."""
    key = f"{app_seed}\x1f{event_id}" if slot is None else f"{app_seed}\x1f{event_id}\x1f{slot}"
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")


def uniform01(seed: int) -> float:
    """A float in [0, 1) from the top 53 bits of the seed."""
    return (seed >> 11) / _TWO_53


def draw(pmf: Sequence[float], seed: int) -> int:
    """Index drawn from `pmf` by inverse CDF at `uniform01(seed)`."""
    u = uniform01(seed)
    acc = 0.0
    last = 0
    for i, p in enumerate(pmf):
        if p <= 0.0:
            continue
        acc += p
        last = i
        if u < acc:
            return i
    return last  # rounding left u above the total: take the last action with mass
