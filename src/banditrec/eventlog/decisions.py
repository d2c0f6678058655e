"""Writing decisions: every served decision is in Redis (or the spool) before it is answered.

`DecisionLog.write(app, records)` writes the records of one or more decisions in one
pipeline: one Lua call stores up to 100 events, each serialized only when its turn comes,
so Redis stores one chunk while the next is being built. A repeated event id is never
overwritten: the write answers with what was stored first.

Many callers' records go out in one pipeline through `write_jobs`, each caller's records
as its own `DecisionJob`, so one caller's bad record fails that caller alone. The one layer
that batches callers this way is the serving replica's writer thread
(`serving.writer.DecisionWriter`); a plain `write` is one caller, one pipeline.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from redis.exceptions import ResponseError

from ..decision.record import META_KEY, slot_key
from .errors import UNAVAILABLE, EventLogUnavailable, UnknownAppError, unavailable_as_error
from .keys import AppKeys, check_app_name
from .rewards import REWARD_LUA
from .scripts import Call, Scripts, register, runs

if TYPE_CHECKING:
    from .outage import Outage

Records = list[dict[str, Any]]
Stored = list[dict[str, Any] | None]

# KEYS: pending, stats, rules, early_due, orphans, then per event: ev, early
# ARGV: now, replay, then per event: event_id, decided_at, deferred, n, slot_1, rec_1, ...
# Returns per event 0 (stored) or the records stored earlier under that event id.
LOG_DECISIONS = r"""
local pending, stats, rules, early_due, orphans = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now, replay = ARGV[1], ARGV[2]
local r = redis.call('HMGET', rules, 'wait', 'agg', 'join_on_first', 'orphans_max')
if not r[1] then return redis.error_reply('UNKNOWN_APP no config stored for this app') end
local wait = tonumber(r[1])
local out = {}
local a = 3
local stored_events, stored_records, repeated, replayed = 0, 0, 0, 0
for e = 1, (#KEYS - 5) / 2 do
  local ev, early = KEYS[4 + 2 * e], KEYS[5 + 2 * e]
  local event_id, decided_at, deferred, n = ARGV[a], ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3])
  a = a + 4
  if redis.call('EXISTS', ev) == 1 then
    -- Never overwrite: answer with what was stored (a repeated event id, or a spool replay).
    if replay == '1' then replayed = replayed + n else repeated = repeated + 1 end
    local stored = {}
    for _, s in ipairs(split_slots(redis.call('HGET', ev, 'slots') or '')) do
      stored[#stored + 1] = redis.call('HGET', ev, 'r:' .. s)
    end
    out[e] = stored
  else
    local names, fields = {}, {}
    for i = 0, n - 1 do
      names[#names + 1] = ARGV[a + 2 * i]
      fields[#fields + 1] = 'r:' .. ARGV[a + 2 * i]
      fields[#fields + 1] = ARGV[a + 2 * i + 1]
    end
    -- A decision replayed from the spool waits its full time from now: its rewards may
    -- still be on their way (spooled after it, or by another process).
    local deadline = tonumber(decided_at) + wait
    if replay == '1' then deadline = math.max(deadline, tonumber(now) + wait) end
    local activated = '1'
    if deferred == '1' then activated = '0' end
    redis.call('HSET', ev, 'slots', table.concat(names, ','), 'deadline', tostring(deadline),
      'decided_at', decided_at, 'deferred', deferred, 'activated', activated, unpack(fields))
    redis.call('ZADD', pending, deadline, event_id)
    stored_events = stored_events + 1
    stored_records = stored_records + n
    -- Rewards that arrived first were held for this decision: attach them now, in order.
    local held = redis.call('LRANGE', early, 0, -1)
    if #held > 0 then
      for _, item in ipairs(held) do
        local token, slot, all, value = held_reward(item)
        local outcome, seen = apply_reward(ev, slot, all, value, r[2], token)
        if not seen then settle(stats, orphans, r[4], outcome, event_id, slot, value, now) end
        if outcome == 'accepted' then due_now_if_first(pending, ev, event_id, r[3], now) end
      end
      redis.call('HINCRBY', stats, 'early_attached', #held)
      redis.call('DEL', early)
      redis.call('ZREM', early_due, event_id)
    end
    out[e] = 0
  end
  a = a + 2 * n
end
if stored_events > 0 then
  redis.call('HINCRBY', stats, 'decisions', stored_records)
  redis.call('HINCRBY', stats, 'events', stored_events)
end
if repeated > 0 then redis.call('HINCRBY', stats, 'repeated_event_ids', repeated) end
if replayed > 0 then redis.call('HINCRBY', stats, 'replayed_existing', replayed) end
return out
"""

register("log_decisions", REWARD_LUA + LOG_DECISIONS)

# Events per script call: small enough that Redis starts on the first chunk soon, large
# enough that the per-call work (rules, counters) stays negligible.
_DECISION_CHUNK = 100


@dataclass(slots=True)
class DecisionJob:
    """One caller's records, grouped by event, and what the write answered."""

    app: str
    records: Records
    events: list[Records]  # records grouped by event, in order
    result: Stored = field(default_factory=list)
    error: BaseException | None = None

    @classmethod
    def of(cls, app: str, records: Records) -> DecisionJob:
        """Raises ValueError for records that are not decisions of `app`."""
        return cls(app, records, _group_by_event(check_app_name(app), records))


class DecisionLog:
    """Writes the decision records of `DecisionEngine.decide_logged`; reads them back."""

    def __init__(self, client: Any, scripts: Scripts, outage: Outage) -> None:
        self.client = client
        self.scripts = scripts
        self.outage = outage

    def write(self, app: str, records: Records) -> Stored:
        """Record served decisions before they are acknowledged.

        For each record: None if it was new (or spooled), else the record stored earlier under
        the same EventId (a repeated event id is never overwritten; for a slot the stored
        event lacks, its first record). Raises UnknownAppError (no config stored),
        EventLogUnavailable (Redis down and the spool cannot take it), ValueError (not
        records of this app, or not JSON).
        """
        if not records:
            return []
        job = DecisionJob.of(app, records)
        self.write_jobs([job])
        if job.error is not None:
            raise job.error
        return job.result

    def write_jobs(self, batch: list[DecisionJob]) -> None:
        """Write the jobs in one pipeline; each gets its `result` or its `error`."""
        try:
            if not self._spool(batch, only_if_spooling=True):
                self._stream(batch)
        except UNAVAILABLE as exc:
            self.outage.enter(exc)
            try:
                self._spool(batch, only_if_spooling=False)
            except EventLogUnavailable as err:
                _fail(batch, err)
        except BaseException as err:  # every waiting caller gets an answer, never a silent []
            _fail(batch, err)

    def _stream(self, batch: list[DecisionJob]) -> None:
        """One pipeline of script calls, each serialized only when its turn comes, so Redis
        stores one chunk while the next is being serialized."""
        now = repr(time.time())
        items = [(job, event) for job in batch for event in job.events]
        sent: list[list[tuple[DecisionJob, Records]]] = []  # the events of each call

        def calls() -> Iterator[Call]:
            for chunk in runs(items, lambda item: item[0].app, _DECISION_CHUNK):
                chunk = [item for item in chunk if item[0].error is None]
                if not chunk:  # all of it from callers already failed in an earlier chunk
                    continue
                try:
                    call = log_call(chunk[0][0].app, [ev for _, ev in chunk], now, replay=False)
                except (TypeError, ValueError):  # orjson: a value that is not JSON
                    chunk = _serializable(chunk)
                    if not chunk:
                        continue
                    call = log_call(chunk[0][0].app, [ev for _, ev in chunk], now, replay=False)
                sent.append(chunk)
                yield call

        results = self.scripts.execute(calls())
        for chunk, res in zip(sent, results, strict=True):
            _settle(chunk, res)

    def _spool(self, batch: list[DecisionJob], *, only_if_spooling: bool) -> bool:
        if only_if_spooling and not self.outage.spooling:
            return False
        lines: list[bytes] = []
        spooled: list[DecisionJob] = []
        for job in batch:  # a record that is not JSON fails its own caller, not the segment
            if job.error is not None:
                continue
            try:
                lines += [orjson.dumps({"k": "d", "app": job.app, "rec": ev}) for ev in job.events]
            except (TypeError, ValueError) as exc:
                job.error = _not_json(exc)
                continue
            spooled.append(job)
        if not self.outage.append(lines, only_if_spooling=only_if_spooling):
            return False
        for job in spooled:
            job.result = [None] * len(job.records)
        return True

    @unavailable_as_error
    def records(self, app: str, event_id: str) -> Records:
        """The stored records of an event (one per slot): pending, or joined within joined_ttl_s."""
        ev = AppKeys(check_app_name(app)).event(event_id)
        slots = self.client.hget(ev, "slots")
        if slots is None:
            return []
        fields = [f"r:{s}" for s in slots.decode().split(",")]
        return [orjson.loads(r) for r in self.client.hmget(ev, fields) if r is not None]

    def get(self, app: str, event_id: str, slot: str | None = None) -> dict[str, Any] | None:
        """The stored record of an event (of `slot`, else its first slot), or None."""
        records = self.records(app, event_id)
        if slot is not None:
            records = [r for r in records if r[META_KEY].get("slot") == slot]
        return records[0] if records else None


def log_call(app: str, events: list[Records], now: str, *, replay: bool) -> Call:
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


def _serializable(
    chunk: list[tuple[DecisionJob, list[dict[str, Any]]]],
) -> list[tuple[DecisionJob, Any]]:
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


def _group_by_event(app: str, records: Records) -> list[Records]:
    """Consecutive records of one decision (its slots) form a group; a slot seen again
    starts a new group (the same event id decided twice)."""
    groups: list[Records] = []
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


def _fail(batch: list[DecisionJob], error: BaseException) -> None:
    for job in batch:
        if job.error is None:
            job.result = []
            job.error = error


def _settle(chunk: list[tuple[DecisionJob, list[dict[str, Any]]]], res: Any) -> None:
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
