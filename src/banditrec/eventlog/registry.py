"""Model versions in Redis: model bytes and the learned-through offset, written together.

`br:{app}:model` names the current version; `br:{app}:mv:<version>` holds one version's
bytes (one field per slot), offset and counts; the last N versions are kept for rollback.
A publish is a compare-and-set on the current version, so a learner that was overtaken
(by another learner, or by a rollback) cannot overwrite: it reloads and goes on.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from .changes import announce
from .errors import ModelConflictError, unavailable_as_error
from .keys import AppKeys
from .scripts import Scripts, register

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

register("publish_model", PUBLISH_MODEL)
register("rollback", ROLLBACK)
register("renew_lease", RENEW_LEASE)
register("release_lease", RELEASE_LEASE)


@dataclass(frozen=True, slots=True)
class ModelRecord:
    version: int
    offset: str  # last joined-stream id learned ("0-0": none)
    n_learned: int  # joined events consumed through `offset`
    created_at: float
    models: dict[str, bytes] = field(default_factory=dict, repr=False)  # slot ('' single) -> bytes
    note: str = ""


def _model_record(version: int, h: dict[bytes, bytes], with_bytes: bool) -> ModelRecord:
    models = {k[2:].decode(): v for k, v in h.items() if k.startswith(b"m:")} if with_bytes else {}
    return ModelRecord(
        version=version,
        offset=h.get(b"offset", b"0-0").decode(),
        n_learned=int(h.get(b"n_learned", b"0")),
        created_at=float(h.get(b"created_at", b"0")),
        models=models,
        note=h.get(b"note", b"").decode(),
    )


class ModelRegistry:
    """An app's model versions; a publish or rollback is announced (see `changes`)."""

    def __init__(self, client: Any, scripts: Scripts, models_kept: int) -> None:
        self.client = client
        self.scripts = scripts
        self.models_kept = models_kept

    @unavailable_as_error
    def version(self, app: str) -> int:
        return int(self.client.hget(AppKeys(app).model, "version") or 0)

    @unavailable_as_error
    def publish(
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
        """Store a new current version; raise ModelConflictError if `expected_version` is stale."""
        k = AppKeys(app)
        expected = self.version(app) if expected_version is None else expected_version
        new_version = expected + 1
        kept = [int(v) for v in self.client.zrange(k.models, 0, -1)]
        prune = kept[: max(0, len(kept) + 1 - self.models_kept)]
        keys = [k.model, k.models, k.model_version_key(new_version), k.stats]
        keys += [k.model_version_key(v) for v in prune]
        args: list[Any] = [
            expected,
            offset,
            n_learned,
            repr(time.time()),
            learned_delta,
            skipped_delta,
        ]
        args += [note, len(models)]
        for slot, data in models.items():
            args += [slot, data]
        args += prune
        ok, version = self.scripts.call("publish_model", keys, args)
        if not ok:
            raise ModelConflictError(app, expected, int(version))
        announce(self.client, app)
        return int(version)

    @unavailable_as_error
    def get(self, app: str, version: int) -> ModelRecord | None:
        h = self.client.hgetall(AppKeys(app).model_version_key(version))
        return _model_record(version, h, True) if h else None

    @unavailable_as_error
    def latest(self, app: str) -> ModelRecord | None:
        for _ in range(5):
            version = self.version(app)
            if version == 0:
                return None
            record = self.get(app, version)
            if record is not None:
                return record
            # Pruned between the two reads (many publishes in a row): read again.
        raise RuntimeError(f"app {app!r}: the current model version keeps disappearing")

    @unavailable_as_error
    def list(self, app: str) -> list[ModelRecord]:
        k = AppKeys(app)
        versions = [int(v) for v in self.client.zrange(k.models, 0, -1)]
        pipe = self.client.pipeline(transaction=False)
        for v in versions:
            pipe.hmget(k.model_version_key(v), "offset", "n_learned", "created_at", "note")
        out = []
        for v, (offset, n, created, note) in zip(versions, pipe.execute(), strict=True):
            if offset is None:
                continue
            fields = {
                b"offset": offset,
                b"n_learned": n,
                b"created_at": created,
                b"note": note or b"",
            }
            out.append(_model_record(v, fields, False))
        return out

    @unavailable_as_error
    def rollback(self, app: str, version: int) -> int:
        """Make stored `version` current again, as a new version that keeps the current offset."""
        k = AppKeys(app)
        for _ in range(10):
            current = self.version(app)
            keys = [
                k.model,
                k.models,
                k.model_version_key(version),
                k.model_version_key(current + 1),
                k.stats,
            ]
            ok, found = self.scripts.call("rollback", keys, [current, version, repr(time.time())])
            if ok == 1:
                announce(self.client, app)
                return int(found)
            if ok == -1:
                kept = [m.version for m in self.list(app)]
                raise LookupError(f"app {app!r}: model version {version} is not kept; kept: {kept}")
        raise ModelConflictError(app, current, int(found))

    # --- one learner per app ----------------------------------------------------------

    @unavailable_as_error
    def acquire_lease(self, app: str, ttl_s: float, token: str | None = None) -> str | None:
        """A token if this caller now holds the app's learner lease, else None."""
        token = token or uuid.uuid4().hex
        ok = self.client.set(AppKeys(app).learner_lease, token, nx=True, px=int(ttl_s * 1000))
        return token if ok else None

    @unavailable_as_error
    def renew_lease(self, app: str, token: str, ttl_s: float) -> bool:
        keys = [AppKeys(app).learner_lease]
        return bool(self.scripts.call("renew_lease", keys, [token, int(ttl_s * 1000)]))

    @unavailable_as_error
    def release_lease(self, app: str, token: str) -> None:
        self.scripts.call("release_lease", [AppKeys(app).learner_lease], [token])
