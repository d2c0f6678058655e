"""Figures about an app read from its event log: the online reward, the join and learner lags."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from ..eventlog import AppKeys, EventLog
from ..eventlog.records import joined_header, stream_id_tuple

RECENT_EVENTS = 1000


def online_reward(log: EventLog, app: str, n: int = RECENT_EVENTS) -> dict[str, Any]:
    """Mean reward of the most recent joined decisions (the serving policy's online value).

    Rewards that never came count as the app's default reward, as the learner sees them.
    """
    entries = log.client.xrevrange(AppKeys(app).joined, count=n)
    rewards = []
    for _, fields in entries:  # the joined reward is in the header: no record to parse
        try:
            rewards.append(joined_header(fields).reward)
        except (KeyError, ValueError):  # an entry no one could read (it is quarantined)
            continue
    if not rewards:
        return {"events": 0, "mean": None, "ci95": None}
    k = len(rewards)
    mean = math.fsum(rewards) / k
    var = math.fsum((r - mean) ** 2 for r in rewards) / (k - 1) if k > 1 else 0.0
    return {"events": k, "mean": mean, "ci95": 1.96 * math.sqrt(var / k) if k > 1 else None}


@dataclass(frozen=True, slots=True)
class Lags:
    pending: int
    join_lag_s: float  # how long the oldest decision past its wait has waited to be joined
    learner_lag_events: int  # joined events no published model has consumed yet
    learner_lag_s: float  # how long ago the oldest of those was joined


def lags(log: EventLog, app: str, now: float | None = None) -> Lags:
    now = time.time() if now is None else now
    stats = log.stats(app)
    oldest = log.client.zrange(AppKeys(app).pending, 0, 0, withscores=True)
    join_lag = max(0.0, now - float(oldest[0][1])) if oldest else 0.0
    consumed = stats.get("learned", 0) + stats.get("skipped", 0)
    learner_lag_events = max(0, stats.get("joined", 0) - consumed)
    learner_lag_s = 0.0
    if learner_lag_events:
        k = AppKeys(app)
        offset = log.client.hget(k.model, "offset")
        after = b"(" + offset if offset is not None else b"-"
        first = log.client.xrange(k.joined, min=after, count=1)
        if first:
            learner_lag_s = max(0.0, now - stream_id_tuple(first[0][0])[0] / 1000)
    return Lags(
        pending=int(stats.get("pending_events", 0)),
        join_lag_s=join_lag,
        learner_lag_events=learner_lag_events,
        learner_lag_s=learner_lag_s,
    )
