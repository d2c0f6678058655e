"""Runs the Lua scripts by SHA: every state change of a decision happens inside one of them.

The scripts live with the room that uses them (`decisions`, `join`, `config_store`,
`registry`), each registered here by name. Each script touches only keys of one app (one
hash tag), and every key it touches is passed in KEYS, so the scripts stay atomic and
legal on a Redis Cluster.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import hiredis
from redis.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

from .errors import UNAVAILABLE

T = TypeVar("T")

_SOURCES: dict[str, str] = {}
_SHA: dict[str, str] = {}


def register(name: str, source: str) -> str:
    """Make the script `source` callable as `name` (by every `Scripts`); returns `name`."""
    _SOURCES[name] = source
    _SHA[name] = hashlib.sha1(source.encode()).hexdigest()
    return name


def runs(items: list[T], key: Callable[[T], Any], limit: int = 200) -> Iterator[list[T]]:
    """Consecutive items with the same key, at most `limit` per run (one script call each)."""
    run: list[T] = []
    for item in items:
        if run and (key(item) != key(run[0]) or len(run) >= limit):
            yield run
            run = []
        run.append(item)
    if run:
        yield run


# One script call: the script's name, its KEYS and its ARGV.
Call = tuple[str, Sequence[Any], Sequence[Any]]


class Scripts:
    """Runs the scripts by SHA, loading them again when the server forgot them (a restart)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.sha = _SHA  # every registered script (the rooms register theirs on import)

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
