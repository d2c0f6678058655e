"""The reporter: counts every joined decision into the report buckets, once.

It reads an app's joined stream from its own offset (not the learner's: the report counts
what was served, even in `logging` mode where nothing is learned), adds the batch's sums
and moves the offset in one script call (see `store.ReportStore.apply`), and samples the
join and learner lags into the current buckets. It runs beside the learners (one
`ReportingPool` in the learner deployment), off the decision path: a replica's only cost
of reporting is nothing at all per decision.

If the joined stream was trimmed past the reporter's offset (a reporter stopped for longer
than the stream's retention), it resumes at the oldest entry left; those events are not in
the report.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from ..eventlog import AppKeys, EventLog
from ..eventlog.errors import UNAVAILABLE, EventLogUnavailable, survive
from .buckets import Delta
from .store import ReportStore

log = logging.getLogger("banditrec.reporting")


class Reporter:
    """Counts one app's joined stream into its buckets."""

    def __init__(self, event_log: EventLog, app: str, *, batch: int = 5000) -> None:
        self.log = event_log
        self.app = app
        self.batch = batch
        self.store = ReportStore(event_log.client)

    def run_once(self, now: float | None = None) -> int:
        """Count the joined events not counted yet (up to a batch); how many were counted."""
        now = time.time() if now is None else now
        app = self.app
        expected = self.store.offset(app)
        entries = self.store.joined_after(app, expected, self.batch)
        delta = Delta.empty(AppKeys(app).base)
        for entry in entries:
            try:
                delta.add_entry(entry)
            except (KeyError, IndexError, TypeError, ValueError) as exc:  # never blocks the rest
                log.warning("app %s: joined entry %s not counted: %r", app, entry[0], exc)
        lag = self.log.joined.lags(app, now=now)
        delta.add_lags(now, lag.join_lag_s, lag.learner_lag_events)
        new = entries[-1][0].decode() if entries else None
        if not self.store.apply(app, delta, expected, new):
            return 0  # another reporter moved the offset first: its count stands
        return len(entries)

    def catch_up(self, now: float | None = None) -> int:
        """Count everything joined so far; how many were counted."""
        total = 0
        while True:
            n = self.run_once(now)
            total += n
            if n < self.batch:
                return total


class ReportingPool:
    """A thread that keeps every app's report current, every `interval_s`."""

    def __init__(self, event_log: EventLog, interval_s: float = 1.0) -> None:
        self.log = event_log
        self.interval_s = interval_s
        self._reporters: dict[str, Reporter] = {}
        from ..experiments.guard import Supervisor  # it reads reports: imported once both exist

        self.supervisor = Supervisor(event_log)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="banditrec-report", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def run_once(self) -> dict[str, int]:
        names = set(self.log.configs.list_apps())
        for app in self._reporters.keys() - names:
            del self._reporters[app]
        counted: dict[str, Any] = {}
        for app in sorted(names):
            reporter = self._reporters.get(app)
            if reporter is None:
                reporter = self._reporters[app] = Reporter(self.log, app)
            try:
                counted[app] = reporter.catch_up()
                self.supervisor.check(app)  # the experiment's SRM check and guardrail
            except (*UNAVAILABLE, EventLogUnavailable):
                raise
            except Exception:  # one app's bad entry never stops the others' reports
                log.exception("reporting app %s failed; retrying", app)
        return counted

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            survive(self.run_once, log, "reporting")
