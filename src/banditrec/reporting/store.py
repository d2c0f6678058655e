"""The report buckets in Redis: written by the `Reporter`, read by the API and the dashboard.

Keys (all under the app's hash tag, so one script may touch them on a Redis Cluster):

| key | type | what |
| --- | --- | --- |
| `br:{app}:rep:m:<hour start>` | hash | minute buckets of one hour: field `<arm>` → JSON `{"<start>": sums}` |
| `br:{app}:rep:h:<day start>` | hash | hour buckets of one day, the same way |
| `br:{app}:rep:total` | hash | `<arm>` → JSON sums since the app started reporting |
| `br:{app}:rep:offset` | string | the joined-stream id counted through |

A bucket hash expires `RETENTION_S` after it was last written (two days of minutes, 400
days of hours). One Lua script adds a batch of sums and moves the offset only if the offset
is still the one the batch was read after: two reporters on one app never count an event
twice (the loser's batch is dropped and read again).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import orjson

from ..eventlog import AppKeys
from .buckets import PERIODS, RESOLUTIONS, RETENTION_S, Delta

_APPLY = r"""
local function merge(a, d)
  for k, v in pairs(d) do
    if k == 's' then
      if type(a.s) ~= 'table' then a.s = {} end
      for j, x in ipairs(v) do a.s[j] = (a.s[j] or 0) + x end
    elseif k == 'v' then
      if type(a.v) ~= 'table' then a.v = {} end
      for ver, c in pairs(v) do a.v[ver] = (a.v[ver] or 0) + c end
    elseif k == 'jl' or k == 'll' then
      a[k] = math.max(a[k] or 0, v)
    else
      a[k] = (a[k] or 0) + v
    end
  end
  return a
end
local function add(key, field, delta)
  local cur = redis.call('HGET', key, field)
  local a = cur and cjson.decode(cur) or {}
  redis.call('HSET', key, field, cjson.encode(merge(a, cjson.decode(delta))))
end
local function add_buckets(key, field, delta)
  local cur = redis.call('HGET', key, field)
  local doc = cur and cjson.decode(cur) or {}
  for start, d in pairs(cjson.decode(delta)) do
    if type(doc[start]) ~= 'table' then doc[start] = {} end
    merge(doc[start], d)
  end
  redis.call('HSET', key, field, cjson.encode(doc))
end
-- KEYS: offset, totals, bucket hashes...  ARGV: expected offset, new offset, n totals,
-- (arm, json) x n totals, then per bucket hash: ttl, n fields, (field, json) x n
if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then return 0 end
if ARGV[2] ~= '' then redis.call('SET', KEYS[1], ARGV[2]) end
local i = 4
for _ = 1, tonumber(ARGV[3]) do add(KEYS[2], ARGV[i], ARGV[i + 1]); i = i + 2 end
for k = 3, #KEYS do
  local ttl = tonumber(ARGV[i]); local n = tonumber(ARGV[i + 1]); i = i + 2
  for _ = 1, n do add_buckets(KEYS[k], ARGV[i], ARGV[i + 1]); i = i + 2 end
  redis.call('EXPIRE', KEYS[k], ttl)
end
return 1
"""


# The joined entries after an id, cut down in Redis to what the report reads: per entry its
# id, header, and from the record "p" (`,"p":[` occurs only there: feature values are
# never lists), the meta (the last key) and "_labelIndex" (before "c"); the whole record
# when it is laid out otherwise. The features, the bulk of a record, never leave Redis.
_READ = r"""
local out = {}
for _, e in ipairs(redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2])) do
  local f = e[2]
  local h, rec = f[2], f[4]
  if f[1] ~= 'h' then h, rec = f[4], f[2] end
  local i = string.find(rec, ',"p":[', 1, true)
  local j = i and string.find(rec, ']', i, true)
  local m = j and string.find(rec, ',"_banditrec":', j, true)
  local label = string.match(rec, '^{[^{]*"_labelIndex":(%d+)')
  if m and label and string.sub(rec, -1) == '}' then
    out[#out + 1] = {e[1], h, string.sub(rec, i + 5, j), string.sub(rec, m + 14, -2), label}
  else
    out[#out + 1] = {e[1], h, rec}
  end
end
return out
"""


def offset_key(app: str) -> str:
    return f"{AppKeys(app).base}:rep:offset"


def totals_key(app: str) -> str:
    return f"{AppKeys(app).base}:rep:total"


class ReportStore:
    """Reads and writes one Redis's report buckets."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._apply = client.register_script(_APPLY)
        self._read = client.register_script(_READ)

    def offset(self, app: str) -> str | None:
        raw = self.client.get(offset_key(app))
        return raw.decode() if raw else None

    def joined_after(self, app: str, after: str | None, count: int) -> list[list[bytes]]:
        """Up to `count` joined entries after the stream id `after` (all if None), each
        `[id, header, p, meta, labelIndex]` (JSON bytes), or `[id, header, record]`."""
        start = "-" if after is None else "(" + after
        return self._read(keys=[AppKeys(app).joined], args=[start, count])

    def apply(self, app: str, delta: Delta, expected: str | None, new: str | None) -> bool:
        """Add `delta` and move the offset from `expected` to `new`; False if it had moved."""
        keys = [offset_key(app), totals_key(app)]
        totals = delta.totals()
        args: list[Any] = [expected or "", new or "", len(totals)]
        for arm, sums in totals.items():
            args += [arm, orjson.dumps(sums)]
        by_key: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
        for (key, arm), cells in delta.cells.items():
            by_key[key].append((arm, cells))
        for key, cells in by_key.items():
            keys.append(key)
            ttl = RETENTION_S["minute" if ":rep:m:" in key else "hour"]
            args += [ttl, len(cells)]
            for fld, cell in cells:
                args += [fld, orjson.dumps(cell)]
        return bool(self._apply(keys=keys, args=args))

    def totals(self, apps: Iterable[str]) -> dict[str, dict[str, dict[str, float]]]:
        """app → arm → sums since reporting started, one round trip for all apps."""
        apps = list(apps)
        pipe = self.client.pipeline(transaction=False)
        for app in apps:
            pipe.hgetall(totals_key(app))
        return {
            app: {k.decode(): orjson.loads(v) for k, v in raw.items()}
            for app, raw in zip(apps, pipe.execute(), strict=True)
        }

    def buckets(
        self, apps: Iterable[str], resolution: str, since: float, until: float
    ) -> dict[str, dict[int, dict[str, dict[str, Any]]]]:
        """app → bucket start → arm → sums, for buckets starting in [since, until]."""
        if resolution not in RESOLUTIONS:
            raise ValueError(f"resolution {resolution!r}: use one of {sorted(RESOLUTIONS)}")
        apps = list(apps)
        period = PERIODS[resolution]
        first = int(since // period * period)
        periods = list(range(first, int(until) + 1, period))
        pipe = self.client.pipeline(transaction=False)
        tag = resolution[0]
        for app in apps:
            base = AppKeys(app).base
            for start in periods:
                pipe.hgetall(f"{base}:rep:{tag}:{start}")
        replies = iter(pipe.execute())
        out: dict[str, dict[int, dict[str, dict[str, Any]]]] = {}
        for app in apps:
            found: dict[int, dict[str, dict[str, Any]]] = defaultdict(dict)
            for _ in periods:
                for arm, value in next(replies).items():
                    name = arm.decode()
                    for start_s, cell in orjson.loads(value).items():
                        start = int(start_s)
                        if since <= start <= until:
                            found[start][name] = cell
            out[app] = dict(sorted(found.items()))
        return out
