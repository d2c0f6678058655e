"""Time buckets of an app's joined decisions: what the online report is made of.

Every joined record counts once in a minute bucket and once in an hour bucket, under its
arm (the experiment arm it was served by; without an experiment `learned` when the app
served its policy, `default` when it served the default action: apprentice or logging).
A bucket keeps sums, so buckets add up to any window:

| field | sum of |
| --- | --- |
| `n` | joined decisions (records: one per slot) |
| `r`, `q` | reward, reward squared (a reward that never came counts as the app's default) |
| `x` | decisions that explored: the chosen action was not the most probable one |
| `b`, `bq` | the default action's inverse-propensity term w = r·1[a = default]/p, and w² |
| `v` | decisions per model version (under the arm `*`: every arm) |
| `jl`, `ll` | (arm `*`, maxima) join lag in seconds, learner lag in events, sampled |

`b` makes every bucket carry an off-policy estimate of what the default action (the
first action offered, what apprentice mode serves) would have earned on the same traffic,
whatever arm served it: V̂ = Σw / n (IPS, Horvitz & Thompson 1952; unbiased because every
logged propensity p is the exact probability the action was served with).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..schema import META_KEY

ALL_ARMS = "*"
RESOLUTIONS: dict[str, int] = {"minute": 60, "hour": 3600}
# Each bucket hash holds the buckets of one period (an hour of minutes, a day of hours).
PERIODS: dict[str, int] = {"minute": 3600, "hour": 86400}
RETENTION_S: dict[str, int] = {"minute": 2 * 86400, "hour": 400 * 86400}
Z95 = 1.959964
_SUMS = ("n", "r", "q", "x", "b", "bq")
_MAXIMA = ("jl", "ll")


def arm_of(meta: Mapping[str, Any]) -> str:
    """The arm a record was served by."""
    arm = meta.get("arm")
    if arm:
        return str(arm)
    return "learned" if meta.get("mode", "online") == "online" else "default"


def bucket_start(t: float, resolution: str) -> int:
    width = RESOLUTIONS[resolution]
    return int(t // width) * width


def bucket_key(base: str, resolution: str, start: int) -> str:
    """The hash that holds the bucket starting at `start` (`base` is the app's key prefix)."""
    period = PERIODS[resolution]
    return f"{base}:rep:{resolution[0]}:{start // period * period}"


@dataclass(slots=True)
class Delta:
    """Sums to add to the buckets, keyed by (hash key, field = "<start>|<arm>")."""

    base: str
    cells: dict[tuple[str, str], dict[str, Any]]

    @classmethod
    def empty(cls, base: str) -> Delta:
        return cls(base, defaultdict(dict))

    def _cells(self, t: float, arm: str) -> Iterable[dict[str, Any]]:
        for res in RESOLUTIONS:
            start = bucket_start(t, res)
            yield self.cells[bucket_key(self.base, res, start), f"{start}|{arm}"]

    def add_record(self, record: Mapping[str, Any]) -> None:
        """Count one joined DSJson record."""
        meta = record[META_KEY]
        reward = float(meta.get("reward") or 0.0)
        p = record["p"]
        chosen_p = float(p[0])
        explored = 1.0 if chosen_p < max(p) else 0.0
        w = reward / chosen_p if record.get("_labelIndex") == 0 and chosen_p > 0 else 0.0
        t = float(meta.get("decided_at") or 0.0)
        add = (1.0, reward, reward * reward, explored, w, w * w)
        for cell in self._cells(t, arm_of(meta)):
            for name, value in zip(_SUMS, add, strict=True):
                cell[name] = cell.get(name, 0.0) + value
        version = str(meta.get("model_version", 0))
        for cell in self._cells(t, ALL_ARMS):
            versions = cell.setdefault("v", {})
            versions[version] = versions.get(version, 0) + 1

    def add_lags(self, t: float, join_lag_s: float, learner_lag_events: float) -> None:
        for cell in self._cells(t, ALL_ARMS):
            cell["jl"] = max(cell.get("jl", 0.0), float(join_lag_s))
            cell["ll"] = max(cell.get("ll", 0.0), float(learner_lag_events))

    def totals(self) -> dict[str, dict[str, float]]:
        """The sums per arm over the minute buckets (each record is in exactly one)."""
        out: dict[str, dict[str, float]] = defaultdict(dict)
        for (key, fld), cell in self.cells.items():
            if ":rep:m:" not in key:
                continue
            arm = fld.split("|", 1)[1]
            if arm == ALL_ARMS:
                continue
            for name in _SUMS:
                if name in cell:
                    out[arm][name] = out[arm].get(name, 0.0) + cell[name]
        return dict(out)


def merge(into: dict[str, Any], delta: Mapping[str, Any]) -> dict[str, Any]:
    """Add one bucket's sums to another (maxima for lags, per-version counts), in place.

    >>> merge({"n": 1.0, "v": {"1": 1}, "jl": 2.0}, {"n": 2.0, "v": {"1": 1, "2": 1}, "jl": 1.0})
    {'n': 3.0, 'v': {'1': 2, '2': 1}, 'jl': 2.0}
    """
    for name, value in delta.items():
        if name == "v":
            versions = into.setdefault("v", {})
            for version, count in value.items():
                versions[version] = versions.get(version, 0) + count
        elif name in _MAXIMA:
            into[name] = max(into.get(name, 0.0), value)
        else:
            into[name] = into.get(name, 0.0) + value
    return into


@dataclass(frozen=True, slots=True)
class Estimate:
    """A mean with its 95% normal-approximation interval, from (n, Σx, Σx²)."""

    n: int
    mean: float | None
    lower: float | None
    upper: float | None

    @classmethod
    def from_sums(cls, n: float, total: float, squares: float) -> Estimate:
        """mean = Σx/n; half-width = z·√(s²/n) with s² = (Σx² − n·mean²)/(n − 1).

        >>> Estimate.from_sums(4, 2.0, 2.0).as_dict()
        {'n': 4, 'mean': 0.5, 'lower': 0.0342, 'upper': 0.9658}
        """
        k = round(n)
        if k <= 0:
            return cls(0, None, None, None)
        mean = total / n
        if k == 1:
            return cls(1, mean, None, None)
        var = max(0.0, (squares - n * mean * mean) / (n - 1))
        half = Z95 * math.sqrt(var / n)
        return cls(k, mean, mean - half, mean + half)

    def as_dict(self, digits: int = 4) -> dict[str, Any]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, digits)

        return {"n": self.n, "mean": r(self.mean), "lower": r(self.lower), "upper": r(self.upper)}


def summarize(cell: Mapping[str, Any]) -> dict[str, Any]:
    """What the report shows for the sums of one arm (a bucket or a window)."""
    n = float(cell.get("n", 0.0))
    reward = Estimate.from_sums(n, cell.get("r", 0.0), cell.get("q", 0.0))
    baseline = Estimate.from_sums(n, cell.get("b", 0.0), cell.get("bq", 0.0))
    return {
        "decisions": round(n),
        "reward": reward.as_dict(),
        "default_action_ips": baseline.as_dict(),
        "exploration_share": round(cell.get("x", 0.0) / n, 4) if n else None,
    }
