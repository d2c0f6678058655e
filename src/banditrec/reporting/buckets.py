"""Time buckets of an app's joined decisions: what the online report is made of.

Every joined record counts once in a minute bucket and once in an hour bucket, under its
arm (the experiment arm it was served by; without an experiment `learned` when the app
served its policy, `default` when it served the default action: apprentice or logging).
A bucket keeps sums, so buckets add up to any window:

| field | sum of |
| --- | --- |
| `s` | per arm, the list of sums `[n, r, q, x, b, bq]`: |
| ↳ `n` | joined decisions (records: one per slot) |
| ↳ `r`, `q` | reward, reward squared (a reward that never came counts as the app's default) |
| ↳ `x` | decisions that explored: the chosen action was not the most probable one |
| ↳ `b`, `bq` | the default action's inverse-propensity term w = r·1[a = default]/p, and w² |
| `v` | (arm `*`) decisions per model version |
| `jl`, `ll` | (arm `*`, maxima) join lag in seconds, learner lag in events, sampled |

`b` makes every bucket carry an off-policy estimate of what the default action (the
first action offered, what apprentice mode serves) would have earned on the same traffic,
whatever arm served it: V̂ = Σw / n (IPS, Horvitz & Thompson 1952; unbiased because every
logged propensity p is the exact probability the action was served with).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from ..decision.record import META_KEY
from ..eventlog.records import joined_header, joined_record

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
    """Sums to add to the buckets: (hash key, arm) → bucket start → sums.

    In Redis each (hash, arm) is one field holding the JSON of its buckets
    (`{"<start>": {sums}}`), so reading a month of one arm's hours is 30 fields.
    """

    base: str
    cells: dict[tuple[str, str], dict[str, dict[str, Any]]]
    _memo: dict[tuple[int, str], list[dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def empty(cls, base: str) -> Delta:
        return cls(base, defaultdict(dict))

    def _cells(self, t: float, arm: str) -> list[dict[str, Any]]:
        """The cells of every resolution `t` falls in (the same for a whole minute)."""
        minute = int(t // 60)
        found = self._memo.get((minute, arm))
        if found is None:
            found = self._memo[minute, arm] = [
                self.cells[bucket_key(self.base, res, start), arm].setdefault(str(start), {})
                for res in RESOLUTIONS
                for start in (bucket_start(t, res),)
            ]
        return found

    def add_record(self, record: Mapping[str, Any]) -> None:
        """Count one joined DSJson record."""
        meta = record[META_KEY]
        self.add(meta, float(meta.get("reward") or 0.0), record["p"], record.get("_labelIndex"))

    def add_entry(self, entry: list[bytes]) -> None:
        """Count one entry as `ReportStore.joined_after` reads it."""
        head = joined_header({b"h": entry[1]})
        if len(entry) == 5:
            meta, p = orjson.loads(entry[3]), orjson.loads(entry[2])
            self.add(meta, head.reward, p, int(entry[4]))
        else:
            self.add_record(joined_record({b"h": entry[1], b"rec": entry[2]}))

    def add(self, meta: Mapping[str, Any], reward: float, p: list[float], label_index: Any) -> None:
        """Count one decision: its meta, reward, logged pmf (chosen first), chosen index."""
        chosen_p = float(p[0])
        explored = 1.0 if chosen_p < max(p) else 0.0
        w = reward / chosen_p if label_index == 0 and chosen_p > 0 else 0.0
        t = float(meta.get("decided_at") or 0.0)
        add = (1.0, reward, reward * reward, explored, w, w * w)
        for cell in self._cells(t, arm_of(meta)):
            sums = cell.setdefault("s", [0.0] * len(_SUMS))
            for i, value in enumerate(add):
                sums[i] += value
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
        for (key, arm), cells in self.cells.items():
            if ":rep:m:" not in key or arm == ALL_ARMS:
                continue
            for cell in cells.values():
                for name, value in zip(_SUMS, cell["s"], strict=True):
                    out[arm][name] = out[arm].get(name, 0.0) + value
        return dict(out)


def merge(into: dict[str, Any], delta: Mapping[str, Any]) -> dict[str, Any]:
    """Add one bucket's sums to another (maxima for lags, per-version counts), in place.

    >>> merge({"s": [1.0, 1.0], "v": {"1": 1}, "jl": 2.0}, {"s": [1.0, 0.0], "v": {"2": 1}, "jl": 1.0})
    {'s': [2.0, 1.0], 'v': {'1': 1, '2': 1}, 'jl': 2.0}
    """
    for name, value in delta.items():
        if name == "v":
            versions = into.setdefault("v", {})
            for version, count in value.items():
                versions[version] = versions.get(version, 0) + count
        elif name in _MAXIMA:
            into[name] = max(into.get(name, 0.0), value)
        elif name == "s":
            into["s"] = [
                a + b for a, b in zip(into.get("s", [0.0] * len(value)), value, strict=True)
            ]
        else:
            into[name] = into.get(name, 0.0) + value
    return into


def estimate(n: np.ndarray, total: np.ndarray, squares: np.ndarray) -> dict[str, np.ndarray]:
    """Means with their 95% normal-approximation intervals, from (n, Σx, Σx²), elementwise.

    mean = Σx/n; half-width = z·√(s²/n) with s² = (Σx² − n·mean²)/(n − 1); NaN where
    there is no data (n = 0; no interval for n = 1).

    >>> {k: v.round(4).tolist() for k, v in estimate(*np.array([[4.0], [2.0], [2.0]])).items()}
    {'mean': [0.5], 'lower': [-0.0658], 'upper': [1.0658]}
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(n > 0, total / n, np.nan)
        var = np.maximum(0.0, (squares - n * mean * mean) / (n - 1))
        half = np.where(n > 1, Z95 * np.sqrt(var / n), np.nan)
    return {"mean": mean, "lower": mean - half, "upper": mean + half}


def summarize(sums: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """What the report shows for an arm's sums (arrays over buckets, or 0-d for a window)."""
    n = sums["n"]
    with np.errstate(divide="ignore", invalid="ignore"):
        explored = np.where(n > 0, sums["x"] / n, np.nan)
    return {
        "decisions": _plain(n, 0),
        "reward": {k: _plain(v) for k, v in estimate(n, sums["r"], sums["q"]).items()},
        "default_action_ips": {k: _plain(v) for k, v in estimate(n, sums["b"], sums["bq"]).items()},
        "exploration_share": _plain(explored),
    }


def columns(cells: Iterable[Mapping[str, Any] | None], size: int) -> dict[str, np.ndarray]:
    """The sums of a sequence of an arm's buckets (None: no data) as one array per sum."""
    table = np.zeros((size, len(_SUMS)))
    for i, cell in enumerate(cells):
        if cell:
            table[i] = cell["s"]
    return {name: table[:, j] for j, name in enumerate(_SUMS)}


def _plain(values: np.ndarray, digits: int = 4) -> Any:
    """JSON-ready: rounded Python floats (ints for counts), None for NaN."""
    rounded = np.round(values, digits)
    if digits == 0:
        return rounded.astype(np.int64).tolist()
    out = rounded.tolist()
    if isinstance(out, float):
        return None if out != out else out
    return [None if v != v else v for v in out]
