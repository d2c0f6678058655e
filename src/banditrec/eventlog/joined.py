"""The joined stream: what the learner reads, what retention trims, what the figures count.

Each entry of `br:{app}:joined` is one joined decision: a header (`h`: event id, slot,
reward, rewards received, activated, joined at) and the record as logged (`rec`), decoded
by `records.joined_record`. Reading it, trimming it (never past what a published model has
learned), the app's counters and the figures read off the stream (the online reward, the
join and learner lags) live here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..decision.costs import CostScale
from .config_store import ConfigStore
from .errors import UNAVAILABLE, EventLogUnavailable, unavailable_as_error
from .keys import AppKeys, check_app_name
from .records import joined_header, joined_record, stream_id_tuple

RECENT_EVENTS = 1000


@dataclass(frozen=True, slots=True)
class Lags:
    pending: int
    join_lag_s: float  # how long the oldest decision past its wait has waited to be joined
    learner_lag_events: int  # joined events no published model has consumed yet
    learner_lag_s: float  # how long ago the oldest of those was joined


class JoinedStream:
    def __init__(self, client: Any, configs: ConfigStore) -> None:
        self.client = client
        self.configs = configs

    def cost_scales(self, app: str) -> dict[str | None, CostScale]:
        """Each slot's reward → cost map under the app's current config (for `_label_cost`)."""
        config = self.configs.get(app)
        return {} if config is None else config.cost_scales()

    @unavailable_as_error
    def read(
        self, app: str, after: str = "0-0", count: int = 1000, block_ms: int | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        """Joined records after stream id `after`, oldest first, as (stream id, DSJson record)."""
        scales = self.cost_scales(app)
        return [
            (sid, joined_record(f, scales)) for sid, f in self.read_raw(app, after, count, block_ms)
        ]

    @unavailable_as_error
    def read_raw(
        self, app: str, after: str = "0-0", count: int = 1000, block_ms: int | None = None
    ) -> list[tuple[str, dict[bytes, bytes]]]:
        """Joined stream entries after `after`, undecoded (see records.joined_record)."""
        key = AppKeys(app).joined
        resp = self.client.xread({key: after}, count=count, block=block_ms)
        if not resp:
            return []
        entries = resp[0][1] if isinstance(resp, list) else resp[key.encode()][0]
        return [(sid.decode(), fields) for sid, fields in entries]

    def records(
        self, app: str, since: str = "-", until: str = "+", batch: int = 2000
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Joined records with stream ids in [since, until], oldest first."""
        key = AppKeys(check_app_name(app)).joined
        scales = self.cost_scales(app)
        start = since
        while True:
            try:
                entries = self.client.xrange(key, min=start, max=until, count=batch)
            except UNAVAILABLE as exc:
                raise EventLogUnavailable(f"Redis is unreachable: {exc}") from exc
            for sid, fields in entries:
                yield sid.decode(), joined_record(fields, scales)
            if len(entries) < batch:
                return
            start = "(" + entries[-1][0].decode()

    @unavailable_as_error
    def trim(self, app: str, now: float | None = None) -> int:
        """Apply retention (age, count) to the joined stream, never past what was learned."""
        k = AppKeys(app)
        now = time.time() if now is None else now
        max_len, max_age_s = self.configs.retention(app)
        learned = self.client.hget(k.model, "offset")
        if learned is None:
            return 0
        cutoff = (int((now - max_age_s) * 1000), 0)
        excess = int(self.client.xlen(k.joined)) - max_len
        if excess > 0:
            # At most 50,000 per call (a retention just lowered a lot is reached over a few calls).
            entries = self.client.xrange(k.joined, count=min(excess, 50_000) + 1)
            cutoff = max(cutoff, stream_id_tuple(entries[-1][0]))
        cutoff = min(cutoff, stream_id_tuple(learned))
        if cutoff <= (0, 0):
            return 0
        return int(self.client.xtrim(k.joined, minid=f"{cutoff[0]}-{cutoff[1]}", approximate=False))

    @unavailable_as_error
    def stats(self, app: str) -> dict[str, int]:
        """The app's counters, with the lengths of its pending set and streams."""
        k = AppKeys(check_app_name(app))
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(k.stats)
        pipe.zcard(k.pending)
        pipe.xlen(k.joined)
        pipe.xlen(k.orphans)
        pipe.zcard(k.early_due)
        pipe.xlen(k.quarantine)
        counters, pending, joined_len, orphans_len, early, quarantined = pipe.execute()
        out = {key.decode(): int(float(v)) for key, v in counters.items()}
        out.update(
            pending_events=pending,
            joined_stream_len=joined_len,
            orphans_kept=orphans_len,
            early_events_held=early,
            quarantine_kept=quarantined,
        )
        return out

    @unavailable_as_error
    def add_counts(self, app: str, counts: dict[str, int]) -> None:
        """Add to the app's counters (`stats`)."""
        k = AppKeys(check_app_name(app))
        pipe = self.client.pipeline(transaction=False)
        for name, n in counts.items():
            pipe.hincrby(k.stats, name, n)
        pipe.execute()

    @unavailable_as_error
    def online_reward(self, app: str, n: int = RECENT_EVENTS) -> dict[str, Any]:
        """Mean reward of the most recent joined decisions (the serving policy's online value).

        Rewards that never came count as the app's default reward, as the learner sees them.
        """
        entries = self.client.xrevrange(AppKeys(check_app_name(app)).joined, count=n)
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

    @unavailable_as_error
    def lags(self, app: str, now: float | None = None) -> Lags:
        """How far the join and the learner are behind (what the metrics export)."""
        now = time.time() if now is None else now
        stats = self.stats(app)
        k = AppKeys(app)
        oldest = self.client.zrange(k.pending, 0, 0, withscores=True)
        join_lag = max(0.0, now - float(oldest[0][1])) if oldest else 0.0
        consumed = stats.get("learned", 0) + stats.get("skipped", 0)
        learner_lag_events = max(0, stats.get("joined", 0) - consumed)
        learner_lag_s = 0.0
        if learner_lag_events:
            offset = self.client.hget(k.model, "offset")
            after = b"(" + offset if offset is not None else b"-"
            first = self.client.xrange(k.joined, min=after, count=1)
            if first:
                learner_lag_s = max(0.0, now - stream_id_tuple(first[0][0])[0] / 1000)
        return Lags(
            pending=int(stats.get("pending_events", 0)),
            join_lag_s=join_lag,
            learner_lag_events=learner_lag_events,
            learner_lag_s=learner_lag_s,
        )
