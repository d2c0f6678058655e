"""`EventLog`: the decision log, rewards, the join and the joined stream of every app.

Writes that must not be lost (decisions, rewards, activations) take one path: straight to
Redis while it answers; to the bounded on-disk spool while it does not, and from there
back to Redis, in order, when it returns. While anything is spooled, new writes queue
behind it, so the replay order is the order they were made in. Every write is idempotent
(a decision by its event id, a reward by its token), so a write that may or may not have
reached Redis before a connection broke is simply written again.

Concurrent `log_decisions` callers are group-committed: while one pipeline is in flight,
the next callers queue up and go out together in the following one.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import orjson
from redis.exceptions import ResponseError

from ..config import AppConfig
from ..decision.costs import CostScale
from ..decision.record import META_KEY, slot_key
from ..decision.schema import EVENT_ID_PATTERN, Reward
from .changes import ChangeFeed, announce
from .config_store import ConfigStore
from .errors import UNAVAILABLE, EventLogUnavailable, UnknownAppError
from .keys import APPS_KEY, UNKNOWN_APP_ORPHANS_KEY, UNKNOWN_APP_STATS_KEY, AppKeys, check_app_name
from .quarantine import Quarantine
from .records import joined_record, stream_id_tuple
from .registry import ModelRecord, ModelRegistry
from .scripts import Call, Scripts
from .settings import EventLogSettings
from .spool import Spool, SpoolFullError

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")
_EVENT_ID = re.compile(EVENT_ID_PATTERN)


class RewardOutcome(StrEnum):
    ACCEPTED = "accepted"  # attached to its pending decision
    DUPLICATE = "duplicate"  # aggregation 'first' and the slot already had one: kept aside
    EARLY = "early"  # no decision yet: held for the grace period, attached if it comes
    UNKNOWN_EVENT = "unknown_event"  # no such decision (and no grace period): kept aside
    UNKNOWN_SLOT = "unknown_slot"  # the decision has no such slot: kept aside
    ALREADY_JOINED = "already_joined"  # the decision was joined already: kept aside
    UNKNOWN_APP = "unknown_app"  # no such app: kept aside under br:unknown_apps
    SPOOLED = "spooled"  # Redis unreachable: on disk, applied when it returns


def _unavailable_as_error(fn: Callable[P, T]) -> Callable[P, T]:
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        except UNAVAILABLE as exc:
            raise EventLogUnavailable(f"Redis is unreachable: {exc}") from exc

    return wrapper


@dataclass(slots=True)
class _Job:
    app: str
    records: list[dict[str, Any]]
    events: list[list[dict[str, Any]]]  # records grouped by event, in order
    result: list[dict[str, Any] | None] = field(default_factory=list)
    error: BaseException | None = None
    done: bool = False


def _log_call(app: str, events: list[list[dict[str, Any]]], now: str, *, replay: bool) -> Call:
    """One log script call storing `events` (each the records of one decision, one per slot).

    Per event the script takes its id, decision time, deferred flag and record count, then
    each record's slot and DSJson bytes. Raises TypeError/ValueError for a record that is not
    JSON.
    """
    k = AppKeys(app)
    keys = [k.pending, k.stats, k.rules, k.early_due, k.orphans]
    args: list[Any] = [now, "1" if replay else "0"]
    ev_prefix, early_prefix = k.event(""), k.early("")
    dumps = orjson.dumps
    for event in events:
        meta = event[0][META_KEY]
        event_id = meta["event_id"]
        keys += (ev_prefix + event_id, early_prefix + event_id)
        args += (
            event_id,
            repr(float(meta["decided_at"])),
            "1" if meta.get("deferred") else "0",
            len(event),
        )
        for rec in event:
            args += (slot_key(rec[META_KEY].get("slot")), dumps(rec))
    return "log_decisions", keys, args


def _not_json(exc: Exception) -> ValueError:
    """What the caller of a record that orjson refused gets: its own error, no one else's."""
    return ValueError(f"decision record cannot be serialized: {exc}")


def _serializable(chunk: list[tuple[_Job, list[dict[str, Any]]]]) -> list[tuple[_Job, Any]]:
    """The events of `chunk` that are JSON; the job of any other one fails with a ValueError."""
    kept = []
    for job, event in chunk:
        if job.error is not None:
            continue
        try:
            orjson.dumps(event)
        except (TypeError, ValueError) as exc:
            job.error = _not_json(exc)
            continue
        kept.append((job, event))
    return [(job, event) for job, event in kept if job.error is None]


def _group_by_event(app: str, records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Consecutive records of one decision (its slots) form a group; a slot seen again
    starts a new group (the same event id decided twice)."""
    groups: list[list[dict[str, Any]]] = []
    last = None
    slots: set[str | None] = set()
    for rec in records:
        meta = rec.get(META_KEY)
        if not isinstance(meta, dict) or "event_id" not in meta or "EventId" not in rec:
            raise ValueError(f"not a decision record (no {META_KEY}.event_id): {str(rec)[:200]}")
        if meta.get("app") != app:
            raise ValueError(f"record of app {meta.get('app')!r} logged under app {app!r}")
        event_id, slot = meta["event_id"], meta.get("slot")
        if event_id != last or slot in slots:
            groups.append([])
            last, slots = event_id, set()
        groups[-1].append(rec)
        slots.add(slot)
    return groups


class EventLog:
    def __init__(
        self,
        client: Any,
        spool_dir: Path | str | None = None,
        *,
        settings: EventLogSettings | None = None,
    ) -> None:
        self.client = client
        self.settings = settings or EventLogSettings()
        self.scripts = Scripts(client)
        self.configs = ConfigStore(client, self.scripts, self.settings)
        self.models = ModelRegistry(client, self.scripts, self.settings.models_kept)
        self.quarantine = Quarantine(client)
        self.spool = (
            Spool(spool_dir, self.settings.spool_max_bytes, fsync=self.settings.spool_fsync)
            if spool_dir is not None
            else None
        )
        self._queue: list[_Job] = []
        self._queue_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._spool_lock = threading.Lock()
        self._spooling = False
        self._flusher: threading.Thread | None = None
        self._wake = threading.Event()
        self._closed = threading.Event()
        with contextlib.suppress(*UNAVAILABLE):
            self.scripts.load()
        if self.spool is not None and not self.spool.is_empty():
            self._spooling = True  # a previous process left entries: they go first
            self._start_flusher()

    # --- apps ---------------------------------------------------------------------

    @_unavailable_as_error
    def put_config(self, config: AppConfig) -> int:
        version = self.configs.put(config)
        announce(self.client, config.name)
        return version

    @_unavailable_as_error
    def update_config(self, app: str, change: Callable[[AppConfig], AppConfig]) -> AppConfig:
        """Apply `change` to the stored config as a compare-and-set (see ConfigStore.update)."""
        config = self.configs.update(check_app_name(app), change)
        announce(self.client, app)
        return config

    def changes(self) -> ChangeFeed:
        """A feed of the apps whose model or config changes (see eventlog.changes)."""
        return ChangeFeed(self.client)

    @_unavailable_as_error
    def get_config(self, app: str) -> AppConfig | None:
        return self.configs.get(app)

    @_unavailable_as_error
    def list_apps(self) -> list[str]:
        return self.configs.list_apps()

    @_unavailable_as_error
    def config_version(self, app: str) -> int:
        return self.configs.version(app)

    @_unavailable_as_error
    def set_retention(
        self, app: str, *, max_len: int | None = None, max_age_s: float | None = None
    ) -> None:
        self.configs.set_retention(app, max_len=max_len, max_age_s=max_age_s)

    @_unavailable_as_error
    def drop_app(self, app: str) -> int:
        """Delete every key of the app (decisions, joined stream, models, config)."""
        k = AppKeys(check_app_name(app))
        n = 0
        batch: list[bytes] = []
        for key in self.client.scan_iter(match=k.pattern, count=1000):
            batch.append(key)
            if len(batch) >= 500:
                n += self.client.unlink(*batch)  # one hash tag: one slot, legal on a cluster
                batch = []
        if batch:
            n += self.client.unlink(*batch)
        self.client.srem(APPS_KEY, app)
        return n

    # --- decisions ------------------------------------------------------------------

    def log_decisions(self, app: str, records: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
        """Record served decisions before they are acknowledged.

        For each record: None if it was new (or spooled), else the record stored earlier under
        the same EventId (a repeated event id is never overwritten; for a slot the stored
        event lacks, its first record). Raises UnknownAppError (no config stored),
        EventLogUnavailable (Redis down and the spool cannot take it), ValueError (not
        records of this app).
        """
        if not records:
            return []
        check_app_name(app)
        job = _Job(app, records, _group_by_event(app, records))
        with self._queue_lock:
            self._queue.append(job)
        with self._write_lock:
            if not job.done:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._write_decisions(batch)
        if job.error is not None:
            raise job.error
        return job.result

    def _write_decisions(self, batch: list[_Job]) -> None:
        try:
            if not self._spool_jobs(batch, only_if_spooling=True):
                self._stream_decisions(batch)
        except UNAVAILABLE as exc:
            self._enter_outage(exc)
            try:
                self._spool_jobs(batch, only_if_spooling=False)
            except EventLogUnavailable as err:
                _fail(batch, err)
        except BaseException as err:  # every waiting caller gets an answer, never a silent []
            _fail(batch, err)
        finally:
            for job in batch:
                job.done = True

    def _stream_decisions(self, batch: list[_Job]) -> None:
        """One pipeline of script calls, each serialized only when its turn comes, so Redis
        stores one chunk while the next is being serialized."""
        now = repr(time.time())
        items = [(job, event) for job in batch for event in job.events]
        sent: list[list[tuple[_Job, list[dict[str, Any]]]]] = []  # the events of each call

        def calls() -> Iterator[Call]:
            for chunk in _runs(items, lambda item: item[0].app, _DECISION_CHUNK):
                chunk = [item for item in chunk if item[0].error is None]
                if not chunk:  # all of it from callers already failed in an earlier chunk
                    continue
                try:
                    call = _log_call(chunk[0][0].app, [ev for _, ev in chunk], now, replay=False)
                except (TypeError, ValueError):  # orjson: a value that is not JSON
                    chunk = _serializable(chunk)
                    if not chunk:
                        continue
                    call = _log_call(chunk[0][0].app, [ev for _, ev in chunk], now, replay=False)
                sent.append(chunk)
                yield call

        results = self.scripts.execute(calls())
        for chunk, res in zip(sent, results, strict=True):
            _settle_decisions(chunk, res)

    @_unavailable_as_error
    def get_records(self, app: str, event_id: str) -> list[dict[str, Any]]:
        """The stored records of an event (one per slot): pending, or joined within joined_ttl_s."""
        ev = AppKeys(check_app_name(app)).event(event_id)
        slots = self.client.hget(ev, "slots")
        if slots is None:
            return []
        fields = [f"r:{s}" for s in slots.decode().split(",")]
        return [orjson.loads(r) for r in self.client.hmget(ev, fields) if r is not None]

    def get_decision(
        self, app: str, event_id: str, slot: str | None = None
    ) -> dict[str, Any] | None:
        """The stored record of an event (of `slot`, else its first slot), or None."""
        records = self.get_records(app, event_id)
        if slot is not None:
            records = [r for r in records if r[META_KEY].get("slot") == slot]
        return records[0] if records else None

    # --- rewards --------------------------------------------------------------------

    def add_reward(
        self, app: str, event_id: str, value: float, slot: str | None = None
    ) -> RewardOutcome:
        return self.add_rewards(app, [Reward(event_id=event_id, value=value, slot=slot)])[0]

    def add_rewards(self, app: str, rewards: Sequence[Reward]) -> list[RewardOutcome]:
        """Attach rewards; every reward gets a defined outcome and is counted."""
        check_app_name(app)
        entries = [_reward_entry(app, r) for r in rewards]
        if not entries:
            return []
        now = repr(time.time())
        try:
            if self._spool_entries(entries, only_if_spooling=True):
                return [RewardOutcome.SPOOLED] * len(entries)
            chunks = list(_runs(entries, lambda e: e["app"]))
            calls = [self._reward_call(c, now) for c in chunks]
            results = self.scripts.execute(calls)
        except UNAVAILABLE as exc:
            self._enter_outage(exc)
            self._spool_entries(entries, only_if_spooling=False)
            return [RewardOutcome.SPOOLED] * len(entries)
        outcomes = []
        for res in results:
            if isinstance(res, Exception):
                raise res
            outcomes += [RewardOutcome(o.decode()) for o in res]
        unknown = [
            e for e, o in zip(entries, outcomes, strict=True) if o is RewardOutcome.UNKNOWN_APP
        ]
        if unknown:
            self._keep_unknown_app(unknown, now)
        return outcomes

    def _reward_call(
        self, entries: list[dict[str, Any]], now: str
    ) -> tuple[str, list[str], list[Any]]:
        k = AppKeys(entries[0]["app"])
        keys = [k.pending, k.stats, k.rules, k.early_due, k.orphans]
        args: list[Any] = [now]
        for e in entries:
            eid, slot = e["event_id"], e["slot"]
            keys += [k.event(eid), k.early(eid)]
            args += [
                eid,
                slot_key(slot),
                "1" if slot is None else "0",
                repr(e["value"]),
                e["token"],
            ]
        return "add_rewards", keys, args

    def _keep_unknown_app(self, entries: list[dict[str, Any]], now: str) -> None:
        pipe = self.client.pipeline(transaction=False)
        for e in entries:
            pipe.hincrby(UNKNOWN_APP_STATS_KEY, e["app"], 1)
            fields = {
                "app": e["app"],
                "e": e["event_id"],
                "s": slot_key(e["slot"]),
                "v": repr(e["value"]),
                "t": now,
            }
            pipe.xadd(
                UNKNOWN_APP_ORPHANS_KEY,
                fields,
                maxlen=self.settings.orphans_max_len,
                approximate=True,
            )
        pipe.execute()

    def activate(self, app: str, event_id: str) -> bool:
        """Count a deferred event; True if it is (now) active or the activation was spooled."""
        check_app_name(app)
        entry = {"k": "a", "app": app, "event_id": event_id}
        try:
            if self._spool_entries([entry], only_if_spooling=True):
                return True
            outcome = self.scripts.call(*self._activate_call(entry, repr(time.time())))
        except UNAVAILABLE as exc:
            self._enter_outage(exc)
            self._spool_entries([entry], only_if_spooling=False)
            return True
        return outcome in (b"activated", b"already_active")

    def _activate_call(self, entry: dict[str, Any], now: str) -> tuple[str, list[str], list[Any]]:
        k = AppKeys(entry["app"])
        return (
            "activate",
            [k.event(entry["event_id"]), k.pending, k.stats, k.rules],
            [entry["event_id"], now],
        )

    # --- join -----------------------------------------------------------------------

    @_unavailable_as_error
    def join_due(self, app: str, now: float | None = None, limit: int = 1000) -> int:
        """Join the decisions whose wait is over (or that got their first reward, with
        join_on_first); returns how many records were joined. Safe to run from many
        processes at once: each decision is joined exactly once."""
        now = time.time() if now is None else now
        k = AppKeys(check_app_name(app))
        ids = self.client.zrangebyscore(k.pending, "-inf", now, start=0, num=limit)
        self._expire_early(k, now)
        if not ids:
            return 0
        event_ids = [i.decode() for i in ids]
        keys = [k.pending, k.stats, k.joined, k.rules, *(k.event(e) for e in event_ids)]
        return int(self.scripts.call("join_due", keys, [repr(now), *event_ids]))

    @_unavailable_as_error
    def next_due(self, app: str) -> tuple[int, float | None]:
        """(pending decisions, the earliest join deadline among them or None): what a joiner
        sleeps on."""
        k = AppKeys(check_app_name(app))
        pipe = self.client.pipeline(transaction=False)
        pipe.zcard(k.pending)
        pipe.zrange(k.pending, 0, 0, withscores=True)
        pending, first = pipe.execute()
        return int(pending), float(first[0][1]) if first else None

    def _expire_early(self, k: AppKeys, now: float) -> int:
        ids = self.client.zrangebyscore(k.early_due, "-inf", now, start=0, num=1000)
        if not ids:
            return 0
        event_ids = [i.decode() for i in ids]
        keys = [k.early_due, k.stats, k.orphans, k.rules, *(k.early(e) for e in event_ids)]
        return int(self.scripts.call("expire_early", keys, [repr(now), *event_ids]))

    def cost_scales(self, app: str) -> dict[str | None, CostScale]:
        """Each slot's reward → cost map under the app's current config (for `_label_cost`)."""
        config = self.get_config(app)
        return {} if config is None else config.cost_scales()

    @_unavailable_as_error
    def read_joined(
        self, app: str, after: str = "0-0", count: int = 1000, block_ms: int | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        """Joined records after stream id `after`, oldest first, as (stream id, DSJson record)."""
        scales = self.cost_scales(app)
        return [
            (sid, joined_record(f, scales))
            for sid, f in self.read_joined_raw(app, after, count, block_ms)
        ]

    @_unavailable_as_error
    def read_joined_raw(
        self, app: str, after: str = "0-0", count: int = 1000, block_ms: int | None = None
    ) -> list[tuple[str, dict[bytes, bytes]]]:
        """Joined stream entries after `after`, undecoded (see records.joined_record)."""
        key = AppKeys(app).joined
        resp = self.client.xread({key: after}, count=count, block=block_ms)
        if not resp:
            return []
        entries = resp[0][1] if isinstance(resp, list) else resp[key.encode()][0]
        return [(sid.decode(), fields) for sid, fields in entries]

    def iter_joined(
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

    @_unavailable_as_error
    def trim_joined(self, app: str, now: float | None = None) -> int:
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

    @_unavailable_as_error
    def orphans(self, app: str, count: int = 100) -> list[dict[str, str]]:
        """The newest rewards kept aside, with why (duplicate, unknown_event, ...)."""
        entries = self.client.xrevrange(AppKeys(check_app_name(app)).orphans, count=count)
        return [{k.decode(): v.decode() for k, v in f.items()} for _, f in entries]

    @_unavailable_as_error
    def stats(self, app: str) -> dict[str, int]:
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

    @_unavailable_as_error
    def add_counts(self, app: str, counts: dict[str, int]) -> None:
        """Add to the app's counters (`stats`)."""
        k = AppKeys(check_app_name(app))
        pipe = self.client.pipeline(transaction=False)
        for name, n in counts.items():
            pipe.hincrby(k.stats, name, n)
        pipe.execute()

    @_unavailable_as_error
    def unknown_app_rewards(self) -> dict[str, int]:
        return {k.decode(): int(v) for k, v in self.client.hgetall(UNKNOWN_APP_STATS_KEY).items()}

    # --- models ---------------------------------------------------------------------

    @_unavailable_as_error
    def publish_model(
        self,
        app: str,
        models: dict[str, bytes],
        offset: str,
        n_learned: int,
        *,
        expected_version: int | None = None,
        learned_delta: int = 0,
        skipped_delta: int = 0,
        note: str = "",
    ) -> int:
        version = self.models.publish(
            app,
            models,
            offset,
            n_learned,
            expected_version=expected_version,
            learned_delta=learned_delta,
            skipped_delta=skipped_delta,
            note=note,
        )
        announce(self.client, app)
        return version

    @_unavailable_as_error
    def latest_model(self, app: str) -> ModelRecord | None:
        return self.models.latest(app)

    @_unavailable_as_error
    def get_model(self, app: str, version: int) -> ModelRecord | None:
        return self.models.get(app, version)

    @_unavailable_as_error
    def model_version(self, app: str) -> int:
        return self.models.version(app)

    @_unavailable_as_error
    def versions(self, app: str) -> tuple[int, int]:
        """(model version, config version) in one round trip: what a replica polls."""
        k = AppKeys(app)
        pipe = self.client.pipeline(transaction=False)
        pipe.hget(k.model, "version")
        pipe.get(k.config_version)
        model_version, config_version = pipe.execute()
        return int(model_version or 0), int(config_version or 0)

    @_unavailable_as_error
    def rollback(self, app: str, version: int) -> int:
        restored = self.models.rollback(app, version)
        announce(self.client, app)
        return restored

    @_unavailable_as_error
    def list_models(self, app: str) -> list[ModelRecord]:
        return self.models.list(app)

    # --- outage path ----------------------------------------------------------------

    @property
    def spooling(self) -> bool:
        """True while writes go to the spool (Redis unreachable, or the spool not yet replayed)."""
        return self._spooling

    def _enter_outage(self, exc: BaseException) -> None:
        if not self._spooling:
            where = self.spool.root if self.spool is not None else "nowhere (no spool configured)"
            log.error("Redis unreachable (%s): spooling writes to %s", exc, where)
        self._start_flusher()

    def _spool_jobs(self, batch: list[_Job], *, only_if_spooling: bool) -> bool:
        if only_if_spooling and not self._spooling:
            return False
        lines: list[bytes] = []
        spooled: list[_Job] = []
        for job in batch:  # a record that is not JSON fails its own caller, not the segment
            if job.error is not None:
                continue
            try:
                lines += [orjson.dumps({"k": "d", "app": job.app, "rec": ev}) for ev in job.events]
            except (TypeError, ValueError) as exc:
                job.error = _not_json(exc)
                continue
            spooled.append(job)
        if not self._spool_lines(lines, only_if_spooling=only_if_spooling):
            return False
        for job in spooled:
            job.result = [None] * len(job.records)
        return True

    def _spool_entries(self, entries: list[dict[str, Any]], *, only_if_spooling: bool) -> bool:
        return self._spool_lines(
            [orjson.dumps(e) for e in entries], only_if_spooling=only_if_spooling
        )

    def _spool_lines(self, lines: list[bytes], *, only_if_spooling: bool) -> bool:
        """Append serialized entries to the spool: always, or only while spooling already
        (to keep the order)."""
        with self._spool_lock:
            if only_if_spooling and not self._spooling:
                return False
            if self.spool is None:
                raise EventLogUnavailable(
                    "Redis is unreachable and no spool directory is configured"
                )
            self._spooling = True
            try:
                self.spool.append_lines(lines)
            except SpoolFullError as exc:
                log.error(
                    "NOT LOGGED: %d entr%s refused: %s",
                    len(lines),
                    "y" if len(lines) == 1 else "ies",
                    exc,
                )
                raise EventLogUnavailable(str(exc)) from exc
        self._wake.set()
        return True

    def _start_flusher(self) -> None:
        if self.spool is None:
            return
        with self._spool_lock:
            if self._flusher is not None and self._flusher.is_alive():
                return
            self._flusher = threading.Thread(
                target=self._flush_loop, name="eventlog-spool", daemon=True
            )
            self._flusher.start()

    def _flush_loop(self) -> None:
        while not self._closed.is_set():
            try:
                if self.flush_spool():
                    self._wake.wait(1.0)
                    self._wake.clear()
            except UNAVAILABLE:
                self._closed.wait(self.settings.probe_interval_s)
            except Exception:  # keep the flusher alive; the entries stay on disk
                log.exception("spool replay failed; retrying")
                self._closed.wait(self.settings.probe_interval_s)

    def flush_spool(self) -> bool:
        """Replay spooled entries into Redis, oldest first; True once the spool is empty.

        Raises a Redis connection error if Redis is still unreachable (nothing is lost:
        a segment is deleted only after all of it reached Redis).
        """
        if self.spool is None:
            return True
        while True:
            with self._spool_lock:
                segment = self.spool.next_segment()
                if segment is None:
                    if self._spooling:
                        log.warning("spool replayed: writing to Redis directly again")
                    self._spooling = False
                    return True
            n = self._replay(segment)
            with self._spool_lock:
                self.spool.done(segment, n)

    def _replay(self, segment: Path) -> int:
        assert self.spool is not None
        self.client.ping()
        entries = list(self.spool.read(segment))
        for start in range(0, len(entries), 5000):
            self._replay_entries(entries[start : start + 5000], repr(time.time()))
        return len(entries)

    def _replay_entries(self, entries: list[dict[str, Any]], now: str) -> None:
        """Replay in order: consecutive entries of one kind and app go out as one script call."""
        runs = list(_runs(entries, lambda e: (e["k"], e["app"])))
        calls = []
        for run in runs:
            kind, app = run[0]["k"], run[0]["app"]
            if kind == "d":
                calls.append(_log_call(app, [e["rec"] for e in run], now, replay=True))
            elif kind == "r":
                calls.append(self._reward_call(run, now))
            else:
                calls += [self._activate_call(e, now) for e in run]
        results = self.scripts.execute(calls)
        it = iter(results)
        unknown_app_rewards = []
        for run in runs:
            for res in [next(it)] if run[0]["k"] != "a" else [next(it) for _ in run]:
                if isinstance(res, UNAVAILABLE):
                    raise res
                if isinstance(res, Exception):
                    for entry in run:
                        self._reject(entry, res)
                elif run[0]["k"] == "r":
                    unknown_app_rewards += [
                        e for e, o in zip(run, res, strict=True) if o == b"unknown_app"
                    ]
        if unknown_app_rewards:
            self._keep_unknown_app(unknown_app_rewards, now)

    def _reject(self, entry: dict[str, Any], error: BaseException) -> None:
        """A spooled entry Redis refuses (e.g. its app was deleted): keep it in rejected.jsonl."""
        assert self.spool is not None
        log.error(
            "spooled %s entry for app %r refused by Redis (%s): kept in rejected.jsonl",
            entry["k"],
            entry["app"],
            error,
        )
        with open(self.spool.root / "rejected.jsonl", "ab") as f:
            f.write(orjson.dumps({"error": str(error), "entry": entry}) + b"\n")

    def close(self) -> None:
        """Stop the spool flusher (after one last replay attempt) and close the spool."""
        if self.spool is not None and not self.spool.is_empty():
            with contextlib.suppress(*UNAVAILABLE):
                self.flush_spool()
        self._closed.set()
        self._wake.set()
        if self._flusher is not None:
            self._flusher.join(timeout=5)
        if self.spool is not None:
            self.spool.close()


def _reward_entry(app: str, reward: Reward) -> dict[str, Any]:
    if not isinstance(reward, Reward):
        raise TypeError(f"expected a Reward, got {type(reward).__name__}")
    if not math.isfinite(reward.value):
        raise ValueError(f"reward {reward.value} is not finite; send a real number")
    if not _EVENT_ID.fullmatch(reward.event_id):
        raise ValueError(f"event id {reward.event_id!r} must match {EVENT_ID_PATTERN}")
    # The token makes a reward idempotent: replaying it from the spool never counts it twice.
    return {
        "k": "r",
        "app": app,
        "event_id": reward.event_id,
        "slot": reward.slot,
        "value": float(reward.value),
        "token": uuid.uuid4().hex[:16],
    }


def _runs(items: list[T], key: Callable[[T], Any], limit: int = 200) -> Iterator[list[T]]:
    """Consecutive items with the same key, at most `limit` per run (one script call each)."""
    run: list[T] = []
    for item in items:
        if run and (key(item) != key(run[0]) or len(run) >= limit):
            yield run
            run = []
        run.append(item)
    if run:
        yield run


# Events per script call of the decision log: small enough that Redis starts on the first
# chunk soon, large enough that the per-call work (rules, counters) stays negligible.
_DECISION_CHUNK = 100


def _fail(batch: list[_Job], error: BaseException) -> None:
    for job in batch:
        if job.error is None:
            job.result = []
            job.error = error


def _settle_decisions(chunk: list[tuple[_Job, list[dict[str, Any]]]], res: Any) -> None:
    if isinstance(res, Exception):
        error = _script_error(chunk[0][0].app, res)
        for job, _ in chunk:
            job.error = error
        return
    for (job, event), stored in zip(chunk, res, strict=True):
        if stored == 0:
            job.result += [None] * len(event)
        else:
            records = [orjson.loads(r) for r in stored]
            by_id = {r["EventId"]: r for r in records}
            job.result += [by_id.get(rec["EventId"], records[0]) for rec in event]


def _script_error(app: str, exc: Exception) -> Exception:
    if isinstance(exc, ResponseError) and "UNKNOWN_APP" in str(exc):
        return UnknownAppError(app)
    return exc
