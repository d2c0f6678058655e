"""The online report of apps over a time window, as the API and the dashboard serve it."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from .buckets import ALL_ARMS, RESOLUTIONS, RETENTION_S, columns, merge, summarize
from .store import ReportStore


def max_hours(resolution: str) -> float:
    return RETENTION_S[resolution] / 3600


def _series(
    buckets: Mapping[int, Mapping[str, Mapping[str, Any]]],
) -> tuple[dict[str, Any], dict[str, dict[str, np.ndarray]]]:
    """The buckets as columns (one list per figure, one entry per bucket start), and the
    sums per arm as arrays."""
    starts = list(buckets)
    size = len(starts)
    arms = sorted({a for cells in buckets.values() for a in cells} - {ALL_ARMS})
    per_arm = {arm: columns((buckets[t].get(arm) for t in starts), size) for arm in arms}
    extra = [buckets[t].get(ALL_ARMS, {}) for t in starts]
    return {
        "start": starts,
        "all": summarize(_add(per_arm.values()) or columns((), size)),
        "arms": {arm: summarize(sums) for arm, sums in per_arm.items()},
        "model_versions": [e.get("v", {}) for e in extra],
        "join_lag_s": [e.get("jl") for e in extra],
        "learner_lag_events": [e.get("ll") for e in extra],
    }, per_arm


def _window(per_arm: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, Any]:
    totals = {arm: {k: v.sum() for k, v in sums.items()} for arm, sums in per_arm.items()}
    return {
        "all": summarize(_add(totals.values()) or _scalars({})),
        "arms": {arm: summarize(sums) for arm, sums in totals.items()},
    }


def _add(items: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Sums added name by name (numbers or arrays alike)."""
    out: dict[str, Any] = {}
    for sums in items:
        for k, v in sums.items():
            out[k] = out.get(k, 0.0) + v
    return out


def reports(
    store: ReportStore,
    apps: Iterable[str],
    *,
    resolution: str = "hour",
    hours: float = 24.0,
    now: float | None = None,
) -> dict[str, dict[str, Any]]:
    """app → its report over the last `hours`: buckets, the window's sums, all-time totals.

    In each summary, `reward` is the arms' online mean reward with its 95% interval and
    `default_action_ips` the off-policy estimate of the default action on the same traffic:
    the baseline the reward is compared with.
    """
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution {resolution!r}: use one of {sorted(RESOLUTIONS)}")
    if not 0 < hours <= max_hours(resolution):
        raise ValueError(f"hours {hours}: between 0 and {max_hours(resolution):g} at {resolution}")
    apps = list(apps)
    until = time.time() if now is None else now
    since = until - hours * 3600
    width = RESOLUTIONS[resolution]
    all_buckets = store.buckets(apps, resolution, since - since % width, until)
    totals = store.totals(apps)
    out = {}
    for app in apps:
        series, per_arm = _series(all_buckets[app])
        window = _window(per_arm)
        versions: dict[str, int] = {}
        for counts in series["model_versions"]:
            merge(versions, counts)
        window["model_versions"] = versions
        out[app] = {
            "app": app,
            "resolution": resolution,
            "since": since,
            "until": until,
            "buckets": series,
            "window": window,
            "totals": {arm: summarize(_scalars(sums)) for arm, sums in totals[app].items()},
        }
    return out


def _scalars(sums: Mapping[str, float]) -> dict[str, np.ndarray]:
    return {name: np.float64(sums.get(name, 0.0)) for name in ("n", "r", "q", "x", "b", "bq")}
