"""The join: a decision whose wait is over (or, with join_on_first, that got its first
reward) moves to the app's joined stream with its reward, exactly once.

`Join.join_due` does one pass for an app (safe to run from many processes at once: the
move is one Lua step per batch); `Joiner` is the loop that keeps doing it, waking as
decisions come in and sleeping until the next deadline when they do not. Rewards held
for a decision that never came are kept aside here too, once their grace period is over.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from .errors import UNAVAILABLE, EventLogUnavailable, unavailable_as_error
from .keys import AppKeys, check_app_name
from .rewards import REWARD_LUA
from .scripts import Scripts, register

log = logging.getLogger(__name__)

# KEYS: pending, stats, joined, rules, ev_1, ..., ev_n
# ARGV: now, event_id_1, ..., event_id_n
JOIN_DUE = r"""
local pending, stats, joined_stream, rules = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now = tonumber(ARGV[1])
local r = redis.call('HMGET', rules, 'default', 'joined_ttl')
local default = r[1] or '0'
local ttl = tonumber(r[2] or '3600')
local joined, defaulted, missing = 0, 0, 0
for i = 2, #ARGV do
  local event_id, ev = ARGV[i], KEYS[3 + i]
  local score = redis.call('ZSCORE', pending, event_id)
  -- ZREM inside the same atomic step: whichever joiner runs first moves the event, once.
  if score and tonumber(score) <= now then
    redis.call('ZREM', pending, event_id)
    local h = redis.call('HMGET', ev, 'slots', 'deadline', 'activated')
    if h[1] then
      local deadline = tonumber(h[2])
      local full = now >= deadline
      local remaining = 0
      for _, s in ipairs(split_slots(h[1])) do
        if redis.call('HEXISTS', ev, 'j:' .. s) == 0 then
          local n = tonumber(redis.call('HGET', ev, 'n:' .. s) or '0')
          if full or n > 0 then
            local w = default
            if n > 0 then w = redis.call('HGET', ev, 'w:' .. s) else defaulted = defaulted + 1 end
            local head = table.concat({event_id, s, w, n, h[3], ARGV[1]}, '|')
            redis.call('XADD', joined_stream, '*', 'h', head, 'rec', redis.call('HGET', ev, 'r:' .. s))
            redis.call('HSET', ev, 'j:' .. s, '1')
            joined = joined + 1
          else
            remaining = remaining + 1
          end
        end
      end
      if remaining == 0 then
        -- Kept a while so late rewards are told 'already_joined' and repeats get the original.
        redis.call('HSET', ev, 'state', 'joined')
        redis.call('EXPIRE', ev, ttl)
      else
        redis.call('ZADD', pending, deadline, event_id)
      end
    else
      missing = missing + 1
    end
  end
end
if joined > 0 then redis.call('HINCRBY', stats, 'joined', joined) end
if defaulted > 0 then redis.call('HINCRBY', stats, 'joined_default', defaulted) end
if missing > 0 then redis.call('HINCRBY', stats, 'pending_without_event', missing) end
return joined
"""

# KEYS: early_due, stats, orphans, rules, early_1, ..., early_n
# ARGV: now, event_id_1, ..., event_id_n
EXPIRE_EARLY = r"""
local early_due, stats, orphans, rules = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now = tonumber(ARGV[1])
local maxlen = redis.call('HGET', rules, 'orphans_max') or '100000'
local moved = 0
for i = 2, #ARGV do
  local event_id, early = ARGV[i], KEYS[3 + i]
  local score = redis.call('ZSCORE', early_due, event_id)
  if score and tonumber(score) <= now then
    redis.call('ZREM', early_due, event_id)
    for _, item in ipairs(redis.call('LRANGE', early, 0, -1)) do
      local token, slot, all, value = held_reward(item)
      orphan(orphans, maxlen, event_id, slot, value, 'unknown_event', ARGV[1])
      moved = moved + 1
    end
    redis.call('DEL', early)
  end
end
if moved > 0 then redis.call('HINCRBY', stats, 'orphans', moved) end
return moved
"""

register("join_due", REWARD_LUA + JOIN_DUE)
register("expire_early", REWARD_LUA + EXPIRE_EARLY)


class Join:
    """Moves due decisions of an app to its joined stream."""

    def __init__(self, client: Any, scripts: Scripts) -> None:
        self.client = client
        self.scripts = scripts

    @unavailable_as_error
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

    @unavailable_as_error
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
        """Rewards held for a decision that did not come within the grace period: kept aside."""
        ids = self.client.zrangebyscore(k.early_due, "-inf", now, start=0, num=1000)
        if not ids:
            return 0
        event_ids = [i.decode() for i in ids]
        keys = [k.early_due, k.stats, k.orphans, k.rules, *(k.early(e) for e in event_ids)]
        return int(self.scripts.call("expire_early", keys, [repr(now), *event_ids]))


class Joiner:
    """Joins an app's due decisions until stopped. Any number may run for one app."""

    def __init__(self, join: Join, app: str, *, limit: int = 1000) -> None:
        self.join = join
        self.app = app
        self.limit = limit

    def run(
        self,
        stop: threading.Event,
        *,
        interval_s: float = 0.05,
        idle_interval_s: float = 1.0,
        idle_after_s: float = 5.0,
    ) -> None:
        """Join until `stop` is set. Looks every `interval_s` while decisions come in; once
        nothing has arrived or been joined for `idle_after_s`, every `idle_interval_s`,
        and never later than the next join deadline."""
        last_active = time.monotonic()
        last_pending = -1
        while not stop.is_set():
            try:
                if self.join.join_due(self.app, limit=self.limit) > 0:
                    last_active = time.monotonic()
                    continue
                pending, next_due = self.join.next_due(self.app)
                now = time.monotonic()
                if pending != last_pending:
                    last_active, last_pending = now, pending
                wait = interval_s if now - last_active < idle_after_s else idle_interval_s
                if next_due is not None:
                    wait = min(wait, max(interval_s / 5, next_due - time.time()))
                stop.wait(wait)
            except (EventLogUnavailable, *UNAVAILABLE) as exc:
                log.warning("app %r: joiner waiting for Redis: %s", self.app, exc)
                stop.wait(1.0)
            except Exception:  # keep joining; the pending events stay where they are
                log.exception("app %r: join failed; retrying", self.app)
                stop.wait(1.0)
