"""The Lua scripts: every state change of a decision happens inside one of them, atomically.

Each script touches only keys of one app (one hash tag), and every key it touches is
passed in KEYS, so the scripts stay atomic and legal on a Redis Cluster.

Event hash fields (`br:{app}:ev:<event_id>`), per slot `<s>` ('' for a single-slot app):
  slots        slot names, comma-separated ('' for a single-slot event)
  r:<s>        the DSJson record (orjson bytes), as logged
  w:<s>        reward aggregated so far            n:<s>  rewards received for the slot
  j:<s>        '1' once the slot has been joined
  t:<token>    outcome already given to the reward with that token (replays are idempotent)
  deadline     join deadline (unix s)   decided_at   deferred   activated   state ('joined')
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import hiredis
from redis.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

from .errors import UNAVAILABLE

_HELPERS = r"""
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

# KEYS: config, config_version, rules
# ARGV: expected version ('' for any), config json, number of rule pairs, then rule
#       name/value pairs; the retention pairs after them are set only when absent.
# Returns the new version, or -1 when the stored version is not the expected one.
PUT_CONFIG = r"""
if ARGV[1] ~= '' and tonumber(redis.call('GET', KEYS[2]) or '0') ~= tonumber(ARGV[1]) then
  return -1  -- changed since the caller read it: the caller reads it again
end
redis.call('SET', KEYS[1], ARGV[2])
local version = redis.call('INCR', KEYS[2])
local n_rules = tonumber(ARGV[3])
for i = 0, n_rules - 1 do
  redis.call('HSET', KEYS[3], ARGV[4 + 2 * i], ARGV[5 + 2 * i])
end
for i = 4 + 2 * n_rules, #ARGV, 2 do
  redis.call('HSETNX', KEYS[3], ARGV[i], ARGV[i + 1])
end
return version
"""

# KEYS: model, models, mv_new, stats, mv_prune_1, ...
# ARGV: expected_version, offset, n_learned, now, learned_delta, skipped_delta, note,
#       n_slots, slot_1, bytes_1, ..., then the versions being pruned
PUBLISH_MODEL = r"""
local model, models, mv_new, stats = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local current = tonumber(redis.call('HGET', model, 'version') or '0')
-- Compare-and-set: a learner that lost its place (another learner, a rollback) must reload.
if current ~= tonumber(ARGV[1]) then return {0, current} end
local version = current + 1
local n_slots = tonumber(ARGV[8])
local fields = {}
local names = {}
for i = 0, n_slots - 1 do
  names[#names + 1] = ARGV[9 + 2 * i]
  fields[#fields + 1] = 'm:' .. ARGV[9 + 2 * i]
  fields[#fields + 1] = ARGV[10 + 2 * i]
end
redis.call('HSET', mv_new, 'version', version, 'offset', ARGV[2], 'n_learned', ARGV[3],
  'created_at', ARGV[4], 'note', ARGV[7], 'slots', table.concat(names, ','), unpack(fields))
redis.call('HSET', model, 'version', version, 'offset', ARGV[2], 'n_learned', ARGV[3],
  'created_at', ARGV[4])
redis.call('ZADD', models, ARGV[4], version)
redis.call('HINCRBY', stats, 'learned', ARGV[5])
redis.call('HINCRBY', stats, 'skipped', ARGV[6])
redis.call('HINCRBY', stats, 'published', 1)
local first_prune = 9 + 2 * n_slots
for i = 5, #KEYS do
  redis.call('DEL', KEYS[i])
  redis.call('ZREM', models, ARGV[first_prune + i - 5])
end
return {1, version}
"""

# KEYS: model, models, mv_source, mv_new, stats
# ARGV: expected_version, source_version, now
ROLLBACK = r"""
local model, models, source, mv_new, stats = unpack(KEYS)
local current = tonumber(redis.call('HGET', model, 'version') or '0')
if current ~= tonumber(ARGV[1]) then return {0, current} end
if redis.call('EXISTS', source) == 0 then return {-1, current} end
local version = current + 1
local state = redis.call('HMGET', model, 'offset', 'n_learned')
local data = redis.call('HGETALL', source)
redis.call('HSET', mv_new, unpack(data))
-- The restored weights go on from the current offset: no event is learned twice.
redis.call('HSET', mv_new, 'version', version, 'offset', state[1], 'n_learned', state[2],
  'created_at', ARGV[3], 'note', 'rollback to v' .. ARGV[2])
redis.call('HSET', model, 'version', version, 'offset', state[1], 'n_learned', state[2],
  'created_at', ARGV[3])
redis.call('ZADD', models, ARGV[3], version)
redis.call('HINCRBY', stats, 'rollbacks', 1)
return {1, version}
"""

# KEYS: lease. ARGV: token, ttl_ms
RENEW_LEASE = r"""
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS: lease. ARGV: token
RELEASE_LEASE = r"""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_SOURCES: dict[str, str] = {
    "log_decisions": _HELPERS + LOG_DECISIONS,
    "add_rewards": _HELPERS + ADD_REWARDS,
    "activate": _HELPERS + ACTIVATE,
    "join_due": _HELPERS + JOIN_DUE,
    "expire_early": _HELPERS + EXPIRE_EARLY,
    "put_config": PUT_CONFIG,
    "publish_model": PUBLISH_MODEL,
    "rollback": ROLLBACK,
    "renew_lease": RENEW_LEASE,
    "release_lease": RELEASE_LEASE,
}

# One script call: the script's name, its KEYS and its ARGV.
Call = tuple[str, Sequence[Any], Sequence[Any]]


class Scripts:
    """Runs the scripts by SHA, loading them again when the server forgot them (a restart)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.sha = {name: hashlib.sha1(src.encode()).hexdigest() for name, src in _SOURCES.items()}

    def load(self) -> None:
        for src in _SOURCES.values():
            self.client.script_load(src)

    def call(self, name: str, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        try:
            return self.client.evalsha(self.sha[name], len(keys), *keys, *args)
        except NoScriptError:
            self.load()
            return self.client.evalsha(self.sha[name], len(keys), *keys, *args)

    def _call_capturing(self, name: str, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        try:
            return self.call(name, keys, args)
        except UNAVAILABLE:
            raise
        except ResponseError as exc:  # like a pipeline's raise_on_error=False
            return exc

    def execute(self, calls: Iterable[Call]) -> list[Any]:
        """Run calls in one pipeline; their results (or ResponseErrors) in order.

        `calls` may be a generator: each call is built, packed and sent in turn, so Redis runs
        one call while the next is still being built, and the replies are read at the end. A
        call answered NOSCRIPT did not run: it runs again after the scripts are loaded. On a
        broken connection the whole batch is sent once more (every script is idempotent)
        before the error is raised; a timeout is not retried (Redis may be overloaded: the
        caller spools instead). redis-py's cluster pipelines refuse EVALSHA: on a cluster the
        calls (each one a batch already) run one by one, each routed to the node owning its
        hash tag.
        """
        if isinstance(self.client, RedisCluster):
            return [self._call_capturing(*call) for call in calls]
        taken = _Replayable(calls)
        try:
            results = self._stream(taken)
        except RedisConnectionError:  # a stale connection (e.g. Redis restarted): once more
            results = self._stream(taken)
        again = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
        if again:
            self.load()
            for i, r in zip(again, self._stream([taken.calls[i] for i in again]), strict=True):
                results[i] = r
        return results

    def _stream(self, calls: Iterable[Call]) -> list[Any]:
        pool = self.client.connection_pool
        conn = pool.get_connection()
        try:
            sent = 0
            for name, keys, args in calls:
                # hiredis packs the whole command in C; redis-py's own packer first walks
                # every argument in Python, which costs as much as the packing itself.
                packed = hiredis.pack_command(("EVALSHA", self.sha[name], len(keys), *keys, *args))
                conn.send_packed_command([packed], check_health=False)
                sent += 1
            results: list[Any] = []
            for _ in range(sent):
                try:
                    results.append(conn.read_response())
                except ResponseError as exc:
                    results.append(exc)
            return results
        except BaseException:
            conn.disconnect()  # replies may be left unread: never reuse this connection
            raise
        finally:
            pool.release(conn)


class _Replayable:
    """Calls from an iterable, which can be iterated again: a second pass first replays every
    call the earlier passes took (a resend after a broken connection), then goes on."""

    def __init__(self, calls: Iterable[Call]) -> None:
        self.calls: list[Call] = []
        self._rest = iter(calls)

    def __iter__(self) -> Iterator[Call]:
        yield from list(self.calls)
        for call in self._rest:
            self.calls.append(call)
            yield call
