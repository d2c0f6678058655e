"""One replica's apps and their upkeep: the first step of the decide → log → join → learn path.

`Replica` holds every app's engine in-process (`AppRuntime`) and keeps it current: a
background thread waits on Redis for change notices (eventlog.changes) and swaps a new
model or config in atomically as soon as one is announced (the engine's served state is one
object); every `refresh_interval_s` it also looks at every app (a notice may be lost),
discovers apps, reloads the API keys file and refreshes the metrics that come from Redis.
Idle, it sleeps on a socket. It answers readiness and health (`ready`, `health`,
`app_health`). The requests themselves are handled by `DecisionService` (serving/service.py),
which is a `Replica`.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..decision.engine import DecisionEngine
from ..eventlog import EventLog
from ..eventlog.errors import UNAVAILABLE, EventLogUnavailable
from ..privacy.keys import PseudonymKeys
from ..reporting.prometheus import ClusterMetrics
from .auth import KeyRing, read_keys_file
from .errors import ApiError
from .metrics import ServiceMetrics
from .settings import HttpLimits, ServiceSettings
from .watcher import ModelWatcher

log = logging.getLogger("banditrec.serving")

UNAVAILABLE_ERRORS = (*UNAVAILABLE, EventLogUnavailable)


def unknown_app(app: str) -> ApiError:
    return ApiError(404, "unknown app", [{"loc": "app", "msg": f"no app named {app!r}"}])


# A learner whose oldest joined event not in the published model is older than this is
# reported behind (it publishes every second or faster when it keeps up).
LEARNER_BEHIND_S = 10.0


@dataclass(slots=True)
class AppRuntime:
    engine: DecisionEngine
    watcher: ModelWatcher
    # Why this app serves in a degraded state (reason → detail): `learner_behind`, set by
    # the refresh loop; a replica serving its last good config adds `last_good_config`.
    degraded: dict[str, str] = field(default_factory=dict)


class Replica:
    """Every app this replica serves, kept current by a background thread; its health."""

    def __init__(
        self,
        log: EventLog,
        settings: ServiceSettings,
        *,
        open_access: bool = False,
        poll_interval_s: float = 0.1,
        refresh_interval_s: float = 1.0,
    ) -> None:
        self.log = log
        self.http: HttpLimits = settings.http
        self.metrics = ServiceMetrics()
        self.cluster_metrics = ClusterMetrics(log, self.metrics.registry, secrets.token_hex(8))
        self._static_keys = list(settings.api_keys)
        self._keys_file = settings.keys_file
        self._keys_mtime: float | None = None
        self.keyring = KeyRing(self._static_keys, open_access=open_access)
        self._reload_keys()
        self._apps: dict[str, AppRuntime] = {}
        self.pseudonym_keys = PseudonymKeys(log.client)
        self._poll_interval_s = poll_interval_s
        self._refresh_interval_s = refresh_interval_s
        self._stop = threading.Event()
        self._discover_apps()
        self._last_refresh_ok = time.monotonic()
        self._changes = log.changes()
        self._thread = threading.Thread(
            target=self._refresh_loop, name="banditrec-refresh", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._changes.close()
        with contextlib.suppress(*UNAVAILABLE_ERRORS):
            self.cluster_metrics.flush()

    # --- apps ---------------------------------------------------------------------

    def app_names(self) -> list[str]:
        return sorted(self._apps)

    def runtime(self, app: str) -> AppRuntime:
        rt = self._apps.get(app)
        if rt is None:
            raise unknown_app(app)
        return rt

    def _load_app(self, app: str) -> AppRuntime | None:
        try:
            config = self.log.configs.get(app)
            if config is None:
                return None
            engine = DecisionEngine(config)
        except UNAVAILABLE_ERRORS:
            raise
        except Exception:  # no good config to fall back on: the other apps load all the same
            log.exception("app %r: its stored config cannot be used; not serving it", app)
            return None
        self._set_pseudonymizer(app, engine)
        watcher = ModelWatcher(self.log, app, engine)
        watcher.poll()  # the current model, if one has been published
        return AppRuntime(engine, watcher)

    def _set_pseudonymizer(self, app: str, engine: DecisionEngine) -> None:
        """The app's current pseudonymization key (created on first use): set for every app,
        so a PATCH that declares identifiers finds it already there."""
        current = self.pseudonym_keys.current(app)
        if engine.pseudonymizer != current:
            engine.set_pseudonymizer(current)

    def _discover_apps(self) -> None:
        names = set(self.log.configs.list_apps())
        apps = {a: rt for a, rt in self._apps.items() if a in names}
        for app in names - apps.keys():
            rt = self._load_app(app)
            if rt is not None:
                apps[app] = rt
        self._apps = apps  # one assignment: requests see the old or the new set

    # --- background refresh -------------------------------------------------------

    def _refresh_loop(self) -> None:
        next_slow = 0.0
        while not self._stop.is_set():
            changed = self._changes.wait(max(0.0, next_slow - time.monotonic()))
            if not self._changes.connected:  # Redis unreachable: poll until it answers again
                self._stop.wait(self._poll_interval_s)
            if self._stop.is_set():
                return
            try:
                now = time.monotonic()
                slow = now >= next_slow
                for app, rt in list(self._apps.items()):
                    if (slow or changed is None or app in changed) and rt.watcher.poll():
                        self.metrics.model_version.labels(app).set(rt.engine.model_version)
                if slow:
                    next_slow = now + self._refresh_interval_s
                    self._reload_keys()  # a local file: first, whatever Redis or an app does
                    self._discover_apps()
                    for app, rt in list(self._apps.items()):  # key rotations, new settings
                        self._set_pseudonymizer(app, rt.engine)
                    self._refresh_gauges()
                    self._last_refresh_ok = time.monotonic()
            except UNAVAILABLE_ERRORS as exc:
                log.warning("event log unavailable, serving the models in memory: %s", exc)
            except Exception:
                log.exception("refresh failed; the models in memory keep serving")
            self.metrics.set_degraded(self.health())

    def _refresh_gauges(self) -> None:
        m = self.metrics
        m.flush_exploration()
        self.cluster_metrics.flush()
        now = time.time()
        for app, rt in self._apps.items():
            m.model_version.labels(app).set(rt.engine.model_version)
            lag = self.log.joined.lags(app, now=now)
            m.join_lag.labels(app).set(lag.join_lag_s)
            m.learner_lag.labels(app).set(lag.learner_lag_events)
            m.learner_lag_seconds.labels(app).set(lag.learner_lag_s)
            m.pending.labels(app).set(lag.pending)
            stale = rt.watcher.config_error
            m.stale_config.labels(app).set(stale is not None)
            if stale is not None:
                rt.degraded["last_good_config"] = stale
            else:
                rt.degraded.pop("last_good_config", None)
            if lag.learner_lag_s > LEARNER_BEHIND_S:
                rt.degraded["learner_behind"] = (
                    f"the oldest joined event not yet learned was joined {lag.learner_lag_s:.0f} s ago"
                )
            else:
                rt.degraded.pop("learner_behind", None)

    def _reload_keys(self) -> None:
        path = self._keys_file
        if path is None:
            return
        mtime = path.stat().st_mtime if path.exists() else 0.0
        if mtime != self._keys_mtime:
            self._keys_mtime = mtime
            records = [*self._static_keys, *read_keys_file(path)]
            self.keyring = KeyRing(records, open_access=self.keyring.open)
            log.info("API keys loaded: %d", len(records))

    def config_errors(self) -> dict[str, str]:
        """Apps this replica serves with their last good config, and why."""
        return {
            app: rt.watcher.config_error
            for app, rt in self._apps.items()
            if rt.watcher.config_error is not None
        }

    def _event_log_answers(self) -> bool:
        return time.monotonic() - self._last_refresh_ok < 5 * self._refresh_interval_s + 1

    def ready(self) -> bool:
        """Can decide: apps loaded, and their decisions can be logged (Redis answers, or the
        spool takes them while it does not)."""
        return bool(self._apps) and (self._event_log_answers() or self.log.outage.spool is not None)

    def health(self) -> dict[str, Any]:
        """`ok`, or `degraded` with why: for the whole replica (`spooling`: decisions wait
        in the spool; `event_log_unreachable`) and per app (`AppRuntime.degraded`)."""
        reasons = []
        if self.log.outage.spooling:
            reasons.append("spooling")
        if not self._event_log_answers():
            reasons.append("event_log_unreachable")
        apps = {app: sorted(rt.degraded) for app, rt in sorted(self._apps.items())}
        degraded = bool(reasons) or any(apps.values())
        return {"status": "degraded" if degraded else "ok", "degraded": reasons, "apps": apps}

    def app_health(self, app: str) -> dict[str, Any]:
        """What `GET /v1/apps/{app}` reports: the replica's reasons and the app's own."""
        rt = self.runtime(app)
        health = self.health()
        reasons = [*health["degraded"], *sorted(rt.degraded)]
        return {
            "status": "degraded" if reasons else "ok",
            "degraded": reasons,
            "details": dict(rt.degraded),
        }
