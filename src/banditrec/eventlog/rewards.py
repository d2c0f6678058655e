"""Rewards: attached to their pending decision, held when they come first, kept aside otherwise.

A reward is attached inside one Lua script per call (`add_rewards`), atomically with the
decision it belongs to; its token makes it idempotent, so one replayed from the spool is
never counted twice. Every reward gets a `RewardOutcome` and is counted in the app's stats.
A deferred decision starts its wait when it is activated (`activate`).

Event hash fields (`br:{app}:ev:<event_id>`), per slot `<s>` ('' for a single-slot app):
  slots        slot names, comma-separated ('' for a single-slot event)
  r:<s>        the DSJson record (orjson bytes), as logged
  w:<s>        reward aggregated so far            n:<s>  rewards received for the slot
  j:<s>        '1' once the slot has been joined
  t:<token>    outcome already given to the reward with that token (replays are idempotent)
  deadline     join deadline (unix s)   decided_at   deferred   activated   state ('joined')
"""

from __future__ import annotations

import math
import re
import time
import uuid
from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from ..decision.record import slot_key
from ..decision.schema import EVENT_ID_PATTERN, Reward
from .errors import UNAVAILABLE, unavailable_as_error
from .keys import UNKNOWN_APP_ORPHANS_KEY, UNKNOWN_APP_STATS_KEY, AppKeys, check_app_name
from .scripts import Call, Scripts, register, runs

if TYPE_CHECKING:
    from .outage import Outage

_EVENT_ID = re.compile(EVENT_ID_PATTERN)

# The Lua every script that attaches rewards shares (the decision log attaches held ones).
REWARD_LUA = r"""
local function split_slots(s)
  local out = {}
  for name in string.gmatch(s .. ',', '([^,]*),') do out[#out + 1] = name end
  return out
end

-- A held reward reads "token|slot|all|value": the token is hex and the last two are a flag
-- and a number, so the slot is everything between the first '|' and the last two, '|'s and all.
local function held_reward(item)
  return string.match(item, '^([^|]*)|(.*)|([^|]*)|([^|]*)$')
end

local function orphan(stream, maxlen, event_id, slot, value, reason, now)
  redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*',
    'e', event_id, 's', slot, 'v', value, 'why', reason, 't', now)
end

-- Attach one reward to a stored event. Returns the outcome and whether it was a replay.
local function apply_reward(ev, slot, all, value, agg, token)
  if token ~= '' then
    local seen = redis.call('HGET', ev, 't:' .. token)
    if seen then return seen, true end
  end
  local slots
  if all == '1' then
    slots = split_slots(redis.call('HGET', ev, 'slots'))
  else
    if redis.call('HEXISTS', ev, 'r:' .. slot) == 0 then return 'unknown_slot', false end
    slots = {slot}
  end
  local applied, dup = 0, 0
  for _, s in ipairs(slots) do
    if redis.call('HEXISTS', ev, 'j:' .. s) == 0 then
      local n = tonumber(redis.call('HGET', ev, 'n:' .. s) or '0')
      local take = true
      if n == 0 then
        redis.call('HSET', ev, 'w:' .. s, value)
      elseif agg == 'sum' then
        redis.call('HINCRBYFLOAT', ev, 'w:' .. s, value)
      elseif agg == 'max' then
        if tonumber(value) > tonumber(redis.call('HGET', ev, 'w:' .. s)) then
          redis.call('HSET', ev, 'w:' .. s, value)
        end
      else
        take = false
      end
      if take then
        redis.call('HINCRBY', ev, 'n:' .. s, 1)
        applied = applied + 1
      else
        dup = dup + 1
      end
    end
  end
  local outcome = 'already_joined'
  if applied > 0 then outcome = 'accepted' elseif dup > 0 then outcome = 'duplicate' end
  if token ~= '' then redis.call('HSET', ev, 't:' .. token, outcome) end
  return outcome, false
end

-- Count an outcome; whatever is not attached is kept aside in the orphans stream.
local function settle(stats, orphans, maxlen, outcome, event_id, slot, value, now)
  if outcome == 'accepted' then
    redis.call('HINCRBY', stats, 'rewards', 1)
    return
  end
  local counter = 'orphans'
  if outcome == 'duplicate' then counter = 'duplicates'
  elseif outcome == 'already_joined' then counter = 'late' end
  redis.call('HINCRBY', stats, counter, 1)
  orphan(orphans, maxlen, event_id, slot, value, outcome, now)
end

-- join_on_first: an activated event with a reward becomes due now (never later than it was).
local function due_now_if_first(pending, ev, event_id, join_on_first, now)
  if join_on_first == '1' and redis.call('HGET', ev, 'activated') == '1' then
    redis.call('ZADD', pending, 'XX', 'LT', now, event_id)
  end
end
"""

# KEYS: pending, stats, rules, early_due, orphans, then per reward: ev, early
# ARGV: now, then per reward: event_id, slot, all ('1': every slot), value, token
# Returns one outcome per reward.
ADD_REWARDS = r"""
local pending, stats, rules, early_due, orphans = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now = ARGV[1]
local r = redis.call('HMGET', rules, 'agg', 'join_on_first', 'early_grace', 'orphans_max')
local out = {}
for i = 1, (#KEYS - 5) / 2 do
  local ev, early = KEYS[4 + 2 * i], KEYS[5 + 2 * i]
  local b = 2 + 5 * (i - 1)
  local event_id, slot, all, value, token = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4]
  local outcome
  if not r[1] then
    outcome = 'unknown_app'
  elseif redis.call('EXISTS', ev) == 0 then
    if tonumber(r[3]) > 0 then
      -- Maybe its decision is still on its way: hold the reward for the grace period.
      redis.call('RPUSH', early, token .. '|' .. slot .. '|' .. all .. '|' .. value)
      redis.call('ZADD', early_due, 'NX', tonumber(now) + tonumber(r[3]), event_id)
      redis.call('HINCRBY', stats, 'early', 1)
      outcome = 'early'
    else
      outcome = 'unknown_event'
      settle(stats, orphans, r[4], outcome, event_id, slot, value, now)
    end
  elseif redis.call('HGET', ev, 'state') == 'joined' then
    outcome = token ~= '' and redis.call('HGET', ev, 't:' .. token)
    if not outcome then
      outcome = 'already_joined'
      settle(stats, orphans, r[4], outcome, event_id, slot, value, now)
    end
  else
    local seen
    outcome, seen = apply_reward(ev, slot, all, value, r[1], token)
    if not seen then
      settle(stats, orphans, r[4], outcome, event_id, slot, value, now)
      if outcome == 'accepted' then due_now_if_first(pending, ev, event_id, r[2], now) end
    end
  end
  out[i] = outcome
end
return out
"""

# KEYS: ev, pending, stats, rules
# ARGV: event_id, now
ACTIVATE = r"""
local ev, pending, stats, rules = unpack(KEYS)
local event_id, now = ARGV[1], tonumber(ARGV[2])
if redis.call('EXISTS', ev) == 0 then
  redis.call('HINCRBY', stats, 'unknown_activations', 1)
  return 'unknown_event'
end
if redis.call('HGET', ev, 'state') == 'joined' then
  redis.call('HINCRBY', stats, 'late_activations', 1)
  return 'already_joined'
end
if redis.call('HGET', ev, 'activated') == '1' then return 'already_active' end
local r = redis.call('HMGET', rules, 'wait', 'join_on_first')
-- The product shows a deferred event only now: its rewards get the full wait from here.
local deadline = math.max(tonumber(redis.call('HGET', ev, 'deadline')), now + tonumber(r[1] or '0'))
redis.call('HSET', ev, 'activated', '1', 'deadline', tostring(deadline))
redis.call('ZADD', pending, 'XX', deadline, event_id)
if r[2] == '1' then
  for _, s in ipairs(split_slots(redis.call('HGET', ev, 'slots'))) do
    if redis.call('HEXISTS', ev, 'n:' .. s) == 1 then
      redis.call('ZADD', pending, 'XX', now, event_id)
      break
    end
  end
end
redis.call('HINCRBY', stats, 'activations', 1)
return 'activated'
"""

register("add_rewards", REWARD_LUA + ADD_REWARDS)
register("activate", REWARD_LUA + ACTIVATE)


class RewardOutcome(StrEnum):
    ACCEPTED = "accepted"  # attached to its pending decision
    DUPLICATE = "duplicate"  # aggregation 'first' and the slot already had one: kept aside
    EARLY = "early"  # no decision yet: held for the grace period, attached if it comes
    UNKNOWN_EVENT = "unknown_event"  # no such decision (and no grace period): kept aside
    UNKNOWN_SLOT = "unknown_slot"  # the decision has no such slot: kept aside
    ALREADY_JOINED = "already_joined"  # the decision was joined already: kept aside
    UNKNOWN_APP = "unknown_app"  # no such app: kept aside under br:unknown_apps
    SPOOLED = "spooled"  # Redis unreachable: on disk, applied when it returns


class Rewards:
    """`add_rewards`, `activate`, and the rewards kept aside (`orphans`)."""

    def __init__(self, client: Any, scripts: Scripts, outage: Outage, orphans_max_len: int) -> None:
        self.client = client
        self.scripts = scripts
        self.outage = outage
        self.orphans_max_len = orphans_max_len

    def add_reward(
        self, app: str, event_id: str, value: float, slot: str | None = None
    ) -> RewardOutcome:
        return self.add_rewards(app, [Reward(event_id=event_id, value=value, slot=slot)])[0]

    def add_rewards(self, app: str, rewards: Sequence[Reward]) -> list[RewardOutcome]:
        """Attach rewards; every reward gets a defined outcome and is counted."""
        check_app_name(app)
        entries = [reward_entry(app, r) for r in rewards]
        if not entries:
            return []
        now = repr(time.time())
        outage = self.outage
        try:
            if outage.append_entries(entries, only_if_spooling=True):
                return [RewardOutcome.SPOOLED] * len(entries)
            calls = [reward_call(c, now) for c in runs(entries, lambda e: e["app"])]
            results = self.scripts.execute(calls)
        except UNAVAILABLE as exc:
            outage.enter(exc)
            outage.append_entries(entries, only_if_spooling=False)
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
            keep_unknown_app(self.client, unknown, now, self.orphans_max_len)
        return outcomes

    def activate(self, app: str, event_id: str) -> bool:
        """Count a deferred event; True if it is (now) active or the activation was spooled."""
        check_app_name(app)
        entry = {"k": "a", "app": app, "event_id": event_id}
        try:
            if self.outage.append_entries([entry], only_if_spooling=True):
                return True
            outcome = self.scripts.call(*activate_call(entry, repr(time.time())))
        except UNAVAILABLE as exc:
            self.outage.enter(exc)
            self.outage.append_entries([entry], only_if_spooling=False)
            return True
        return outcome in (b"activated", b"already_active")

    @unavailable_as_error
    def orphans(self, app: str, count: int = 100) -> list[dict[str, str]]:
        """The newest rewards kept aside, with why (duplicate, unknown_event, ...)."""
        entries = self.client.xrevrange(AppKeys(check_app_name(app)).orphans, count=count)
        return [{k.decode(): v.decode() for k, v in f.items()} for _, f in entries]

    @unavailable_as_error
    def unknown_app_rewards(self) -> dict[str, int]:
        """Rewards received per app name that has no config (kept under br:unknown_apps)."""
        return {k.decode(): int(v) for k, v in self.client.hgetall(UNKNOWN_APP_STATS_KEY).items()}


def reward_entry(app: str, reward: Reward) -> dict[str, Any]:
    """A reward as it is written (and spooled): checked, with its idempotency token."""
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


def reward_call(entries: list[dict[str, Any]], now: str) -> Call:
    """One add_rewards call for reward entries of one app."""
    k = AppKeys(entries[0]["app"])
    keys = [k.pending, k.stats, k.rules, k.early_due, k.orphans]
    args: list[Any] = [now]
    for e in entries:
        eid, slot = e["event_id"], e["slot"]
        keys += [k.event(eid), k.early(eid)]
        args += [eid, slot_key(slot), "1" if slot is None else "0", repr(e["value"]), e["token"]]
    return "add_rewards", keys, args


def activate_call(entry: dict[str, Any], now: str) -> Call:
    k = AppKeys(entry["app"])
    return (
        "activate",
        [k.event(entry["event_id"]), k.pending, k.stats, k.rules],
        [entry["event_id"], now],
    )


def keep_unknown_app(client: Any, entries: list[dict[str, Any]], now: str, max_len: int) -> None:
    """Rewards for an app with no config: counted and kept under br:unknown_apps."""
    pipe = client.pipeline(transaction=False)
    for e in entries:
        pipe.hincrby(UNKNOWN_APP_STATS_KEY, e["app"], 1)
        fields = {
            "app": e["app"],
            "e": e["event_id"],
            "s": slot_key(e["slot"]),
            "v": repr(e["value"]),
            "t": now,
        }
        pipe.xadd(UNKNOWN_APP_ORPHANS_KEY, fields, maxlen=max_len, approximate=True)
    pipe.execute()
