"""The online report of apps over a time window, as the API and the dashboard serve it."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from .buckets import ALL_ARMS, RESOLUTIONS, RETENTION_S, merge, summarize
from .store import ReportStore, window_sums


def max_hours(resolution: str) -> float:
    return RETENTION_S[resolution] / 3600


def _all_arms(arms: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for arm, cell in arms.items():
        if arm != ALL_ARMS:
            merge(out, cell)
    return out


def _bucket(start: int, arms: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    extra = arms.get(ALL_ARMS, {})
    return {
        "start": start,
        "all": summarize(_all_arms(arms)),
        "arms": {arm: summarize(cell) for arm, cell in arms.items() if arm != ALL_ARMS},
        "model_versions": extra.get("v", {}),
        "join_lag_s": extra.get("jl"),
        "learner_lag_events": extra.get("ll"),
    }


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
        buckets = all_buckets[app]
        window = window_sums(buckets)
        out[app] = {
            "app": app,
            "resolution": resolution,
            "since": since,
            "until": until,
            "buckets": [_bucket(start, arms) for start, arms in buckets.items()],
            "window": {
                "all": summarize(_all_arms(window)),
                "arms": {arm: summarize(c) for arm, c in window.items() if arm != ALL_ARMS},
                "model_versions": window[ALL_ARMS].get("v", {}),
            },
            "totals": {arm: summarize(cell) for arm, cell in totals[app].items()},
        }
    return out
