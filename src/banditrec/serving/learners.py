"""The background half of the service: join rewards to decisions, learn, publish models.

A `LearnerPool` runs an `AppWorker` (joiner + learner threads) for every app in Redis,
and starts or stops them as apps appear or go. It lives in its own Serve deployment of
the same application rather than in the `serve` command, so that the application
deployed with a Serve config file on a cluster learns too, and Serve restarts it if it
dies. One writer per app is held by the learner's Redis lease, so a second pool (a
restarted or scaled one) stands by instead of writing; a restarted learner resumes from
the offset stored with the model.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time

from ..eventlog import EventLog
from ..eventlog.errors import survive
from ..learner import AppWorker
from .settings import LearnerOptions

log = logging.getLogger("banditrec.learners")

# glibc keeps pages its threads' arenas freed, so the pool's RSS crept up ~1 MiB a minute
# in a 30-minute soak while what malloc had handed out stayed flat (bench/bench_memory.py).
# Giving them back once a minute keeps RSS at what is in use; None off glibc.
_MALLOC_TRIM = getattr(ctypes.CDLL(None), "malloc_trim", None)
TRIM_EVERY_S = 60.0


class LearnerPool:
    def __init__(self, log: EventLog, options: LearnerOptions | None = None) -> None:
        self.log = log
        self.options = options or LearnerOptions()
        self._workers: dict[str, AppWorker] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="banditrec-learners", daemon=True)
        self._thread.start()

    def apps(self) -> list[str]:
        return sorted(self._workers)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for worker in self._workers.values():
            worker.stop()
        self._workers.clear()

    def _discover(self) -> None:
        names = set(self.log.configs.list_apps())
        options = self.options.model_dump(exclude={"discover_interval_s"})
        for app in names - self._workers.keys():
            try:  # each app on its own: one that cannot start leaves the others learning
                self._workers[app] = AppWorker(self.log, app, **options).start()
            except Exception:
                log.exception("app %s: its learner could not start; retrying", app)
                continue
            log.info("joining and learning app %s", app)
        for app in self._workers.keys() - names:
            self._workers.pop(app).stop()
            log.info("app %s is gone: stopped its learner", app)

    def _loop(self) -> None:
        last_trim = time.monotonic()
        while not self._stop.is_set():
            if _MALLOC_TRIM is not None and time.monotonic() - last_trim >= TRIM_EVERY_S:
                _MALLOC_TRIM(0)  # hand freed heap back to the system (see TRIM_EVERY_S)
                last_trim = time.monotonic()
            survive(self._discover, log, "learner pool: discovering apps")
            self._stop.wait(self.options.discover_interval_s)

    def status(self) -> dict[str, dict[str, object]]:
        return {
            app: {
                "model_version": w.learner.state.base_version,
                "offset": w.learner.state.offset,
                "consumed": w.learner.state.n_consumed,
            }
            for app, w in self._workers.items()
        }
