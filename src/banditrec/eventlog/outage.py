"""The outage path: writes that must not be lost wait in the spool while Redis is away.

Decisions, rewards and activations take one path: straight to Redis while it answers; to
the bounded on-disk spool (`spool.Spool`) while it does not, and from there back to Redis,
in order, when it returns. While anything is spooled, new writes queue behind it, so the
replay order is the order they were made in. Every write is idempotent (a decision by its
event id, a reward by its token), so a write that may or may not have reached Redis before
a connection broke is simply written again.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from .decisions import log_call
from .errors import UNAVAILABLE, EventLogUnavailable
from .rewards import activate_call, keep_unknown_app, reward_call
from .scripts import Call, Scripts, runs
from .settings import EventLogSettings
from .spool import Spool, SpoolFullError

log = logging.getLogger(__name__)


class Outage:
    """Appends to the spool while Redis is unreachable, and replays it when Redis is back."""

    def __init__(
        self,
        client: Any,
        scripts: Scripts,
        spool_dir: Path | str | None,
        settings: EventLogSettings,
    ) -> None:
        self.client = client
        self.scripts = scripts
        self.settings = settings
        self.spool = (
            Spool(spool_dir, settings.spool_max_bytes, fsync=settings.spool_fsync)
            if spool_dir is not None
            else None
        )
        self._lock = threading.Lock()
        self._spooling = False
        self._flusher: threading.Thread | None = None
        self._wake = threading.Event()
        self._closed = threading.Event()
        if self.spool is not None and not self.spool.is_empty():
            self._spooling = True  # a previous process left entries: they go first
            self._start_flusher()

    @property
    def spooling(self) -> bool:
        """True while writes go to the spool (Redis unreachable, or the spool not yet replayed)."""
        return self._spooling

    def enter(self, exc: BaseException) -> None:
        """A write found Redis unreachable: say so once, and start probing for its return."""
        if not self._spooling:
            where = self.spool.root if self.spool is not None else "nowhere (no spool configured)"
            log.error("Redis unreachable (%s): spooling writes to %s", exc, where)
        self._start_flusher()

    def append_entries(self, entries: list[dict[str, Any]], *, only_if_spooling: bool) -> bool:
        return self.append([orjson.dumps(e) for e in entries], only_if_spooling=only_if_spooling)

    def append(self, lines: list[bytes], *, only_if_spooling: bool) -> bool:
        """Append serialized entries to the spool: always, or only while spooling already
        (to keep the order); True if they were appended. Raises EventLogUnavailable when
        there is no spool or it is full."""
        with self._lock:
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
        with self._lock:
            if self._flusher is not None and self._flusher.is_alive():
                return
            self._flusher = threading.Thread(
                target=self._flush_loop, name="eventlog-spool", daemon=True
            )
            self._flusher.start()

    def _flush_loop(self) -> None:
        while not self._closed.is_set():
            try:
                if self.flush():
                    self._wake.wait(1.0)
                    self._wake.clear()
            except UNAVAILABLE:
                self._closed.wait(self.settings.probe_interval_s)
            except Exception:  # keep the flusher alive; the entries stay on disk
                log.exception("spool replay failed; retrying")
                self._closed.wait(self.settings.probe_interval_s)

    def flush(self) -> bool:
        """Replay spooled entries into Redis, oldest first; True once the spool is empty.

        Raises a Redis connection error if Redis is still unreachable (nothing is lost:
        a segment is deleted only after all of it reached Redis).
        """
        if self.spool is None:
            return True
        while True:
            with self._lock:
                segment = self.spool.next_segment()
                if segment is None:
                    if self._spooling:
                        log.warning("spool replayed: writing to Redis directly again")
                    self._spooling = False
                    return True
            n = self._replay(segment)
            with self._lock:
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
        chunks = list(runs(entries, lambda e: (e["k"], e["app"])))
        calls: list[Call] = []
        for run in chunks:
            kind, app = run[0]["k"], run[0]["app"]
            if kind == "d":
                calls.append(log_call(app, [e["rec"] for e in run], now, replay=True))
            elif kind == "r":
                calls.append(reward_call(run, now))
            else:
                calls += [activate_call(e, now) for e in run]
        results = self.scripts.execute(calls)
        it = iter(results)
        unknown_app_rewards = []
        for run in chunks:
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
            keep_unknown_app(self.client, unknown_app_rewards, now, self.settings.orphans_max_len)

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
        """Stop the flusher (after one last replay attempt) and close the spool."""
        if self.spool is not None and not self.spool.is_empty():
            with contextlib.suppress(*UNAVAILABLE):
                self.flush()
        self._closed.set()
        self._wake.set()
        if self._flusher is not None:
            self._flusher.join(timeout=5)
        if self.spool is not None:
            self.spool.close()
