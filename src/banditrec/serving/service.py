"""What one replica does, apart from HTTP: every app's engine in-process, logging, live updates.

The decision path is: validate → engine.decide_logged → records to Redis (acknowledged)
→ answer. A background thread keeps each engine current: it waits on Redis for change
notices (eventlog.changes) and swaps a new model or config in atomically as soon as one is
announced (the engine's served state is one object); every `refresh_interval_s` it also
looks at every app (a notice may be lost), discovers apps and refreshes the metrics that
come from Redis. Idle, it sleeps on a socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from ..decision.engine import DecisionEngine, UnknownSlotError
from ..decision.schema import Decision, DecisionRequest, Reward
from ..eventlog import EventLog
from ..eventlog.errors import (
    UNAVAILABLE,
    ConfigChangedError,
    EventLogUnavailable,
    UnknownAppError,
)
from ..privacy.keys import PseudonymKeys
from ..privacy.retention import apply_retention
from ..reporting.prometheus import ClusterMetrics
from ..slates.schema import SlateDecision
from .audit import record_action
from .auth import KeyRing, read_keys_file
from .decisions import decision_from_records, top_probability
from .errors import ApiError, invalid
from .metrics import ServiceMetrics
from .patch import ROLLBACK_FIELD, patched_config
from .settings import HttpLimits, ServiceSettings
from .slates import decide_slate
from .watcher import ModelWatcher
from .writer import DecisionWriter

log = logging.getLogger("banditrec.serving")

_REWARDS = TypeAdapter(list[Reward])
UNAVAILABLE_ERRORS = (*UNAVAILABLE, EventLogUnavailable)


def parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "malformed JSON", [{"loc": "body", "msg": str(exc)}]) from None


def parse_object(body: bytes, what: str, status: int = 422) -> dict[str, Any]:
    """The body as a JSON object; `status` asking to "send {what}" when it is another value."""
    data = parse_json(body)
    if not isinstance(data, dict):
        raise ApiError(status, "invalid request", [{"loc": "body", "msg": f"send {what}"}])
    return data


class EventIds:
    """Event ids for requests that bring none: a random per-replica prefix and a counter.

    Unique across replicas (64 random bits of prefix) and far cheaper than uuid4, whose
    os.urandom call gives up the GIL on every request."""

    def __init__(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._counter = itertools.count()

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter):010x}"


def unknown_app(app: str) -> ApiError:
    return ApiError(404, "unknown app", [{"loc": "app", "msg": f"no app named {app!r}"}])


def with_event_id(data: Any, new_id: Callable[[], str]) -> Any:
    if isinstance(data, dict) and "event_id" not in data:
        data["event_id"] = new_id()
    return data


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


class DecisionService:
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
        self.event_ids = EventIds()
        self._discover_apps()
        self._last_refresh_ok = time.monotonic()
        self._changes = log.changes()
        self.writer = DecisionWriter(log.decisions)
        # Rewards, activations and admin calls wait on Redis in threads of their own: in the
        # event loop's default pool they would queue behind whatever else the replica's
        # framework runs there.
        self._io = ThreadPoolExecutor(max_workers=8, thread_name_prefix="banditrec-eventlog")
        self._thread = threading.Thread(
            target=self._refresh_loop, name="banditrec-refresh", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._changes.close()
        self.writer.close()
        with contextlib.suppress(*UNAVAILABLE_ERRORS):
            self.cluster_metrics.flush()
        self._io.shutdown(wait=False)

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

    # --- decisions ----------------------------------------------------------------

    def _validate(self, rt: AppRuntime, data: Any, prefix: tuple = ()) -> DecisionRequest:
        try:
            return DecisionRequest.model_validate(data, context={"limits": rt.engine.config.limits})
        except ValidationError as exc:
            raise invalid(exc, prefix) from None

    def _decide(
        self, rt: AppRuntime, request: DecisionRequest, where: str = ""
    ) -> tuple[Decision, list]:
        try:
            # The records go straight to the log: their features go in as the JSON VW
            # already parsed, so the bulk of each record is serialized once.
            return rt.engine.decide_logged(request, serialized_features=True)
        except UnknownSlotError as exc:
            raise ApiError(
                422, "invalid request", [{"loc": where or "body", "msg": str(exc)}]
            ) from None
        except (ValueError, TypeError, OverflowError) as exc:
            # The request passed validation yet the policy could not use it.
            log.warning("request could not be decided: %s", exc)
            raise ApiError(
                422, "invalid request", [{"loc": where or "body", "msg": f"cannot decide: {exc}"}]
            ) from None

    async def _log(self, app: str, records: list) -> list:
        try:
            return await self.writer.write(app, records)
        except UNAVAILABLE_ERRORS as exc:
            raise ApiError(503, "event log unavailable", [str(exc)]) from None
        except UnknownAppError:  # deleted from Redis since this replica loaded it
            raise unknown_app(app) from None

    def _answered(self, app: str, decision: Decision, stored: list) -> Decision:
        if stored and stored[0] is not None:
            self.metrics.repeated.labels(app).inc()
            return decision_from_records(stored)
        self.metrics.observe_decision(app, decision.mode, top_probability(decision))
        return decision

    async def decide(self, app: str, body: bytes) -> Decision:
        self.runtime(app)
        decision, records = self.decide_parsed(app, parse_json(body))
        return await self.log_decision(app, decision, records)

    def decide_parsed(self, app: str, data: Any, where: str = "") -> tuple[Decision, list]:
        """Validate one parsed request and decide it; its records are logged by `log_decision`.

        For routes that translate another API's requests into ours (serving/personalizer.py)."""
        rt = self.runtime(app)
        request = self._validate(rt, with_event_id(data, self.event_ids))
        return self._decide(rt, request, where)

    async def log_decision(self, app: str, decision: Decision, records: list) -> Decision:
        """Log the records (acknowledged); a repeated event id gets the decision logged first."""
        stored = await self._log(app, records) if records else []  # none when opted out
        return self._answered(app, decision, stored)

    async def decide_batch(self, app: str, body: bytes) -> list[Decision]:
        rt = self.runtime(app)
        data = parse_json(body)
        items = data.get("requests") if isinstance(data, dict) else None
        if not isinstance(items, list) or (isinstance(data, dict) and set(data) - {"requests"}):
            raise ApiError(
                422, "invalid request", [{"loc": "requests", "msg": 'send {"requests": [...]}'}]
            )
        if not 1 <= len(items) <= self.http.max_batch:
            msg = f"{len(items)} requests; send between 1 and {self.http.max_batch}"
            raise ApiError(422, "invalid request", [{"loc": "requests", "msg": msg}])
        requests, errors = [], []
        for i, item in enumerate(items):
            try:
                requests.append(
                    self._validate(rt, with_event_id(item, self.event_ids), ("requests", i))
                )
            except ApiError as exc:
                errors += exc.detail
        if errors:
            raise ApiError(422, "invalid request", errors)
        decided = [self._decide(rt, r, f"requests[{i}]") for i, r in enumerate(requests)]
        all_records = [rec for _, records in decided for rec in records]
        stored = await self._log(app, all_records) if all_records else []
        out, start = [], 0
        for decision, records in decided:
            end = start + len(records)
            out.append(self._answered(app, decision, stored[start:end]))
            start = end
        return out

    async def decide_slate(self, app: str, body: bytes) -> SlateDecision:
        """A slate (serving/slates.py): k of the N actions offered, ranked."""
        return await decide_slate(self, app, body)

    # --- rewards ------------------------------------------------------------------

    async def rewards(self, app: str, body: bytes) -> dict[str, Any]:
        """One reward (`{"event_id", "value"}`) or many (`{"rewards": [...]}`)."""
        self.runtime(app)
        data = parse_json(body)
        single = not (isinstance(data, dict) and "rewards" in data)
        try:
            if single:
                rewards = [Reward.model_validate(data)]
            else:
                if set(data) != {"rewards"}:
                    extra = sorted(set(data) - {"rewards"})[0]
                    raise ApiError(
                        422, "invalid request", [{"loc": extra, "msg": "unexpected field"}]
                    )
                items = data["rewards"]
                if isinstance(items, list) and not 1 <= len(items) <= self.http.max_batch:
                    msg = f"{len(items)} rewards; send between 1 and {self.http.max_batch}"
                    raise ApiError(422, "invalid request", [{"loc": "rewards", "msg": msg}])
                rewards = _REWARDS.validate_python(items)
        except ValidationError as exc:
            raise invalid(exc, () if single else ("rewards",)) from None
        outcomes = await self._call(self.log.rewards.add_rewards, app, rewards)
        for outcome in outcomes:
            self.metrics.rewards.labels(app, str(outcome)).inc()
        results = [
            {"event_id": r.event_id, "slot": r.slot, "outcome": str(o)}
            for r, o in zip(rewards, outcomes, strict=True)
        ]
        return results[0] if single else {"outcomes": results}

    async def activate(self, app: str, event_id: str) -> dict[str, Any]:
        self.runtime(app)
        if not await self._call(self.log.rewards.activate, app, event_id):
            raise ApiError(
                404,
                "unknown event",
                [
                    {
                        "loc": "event_id",
                        "msg": f"no pending decision {event_id!r} (unknown, expired or joined)",
                    }
                ],
            )
        return {"event_id": event_id, "activated": True}

    # --- admin --------------------------------------------------------------------

    async def _call(self, fn: Callable, *args: Any) -> Any:
        """A blocking event-log call, off the event loop."""
        try:
            return await asyncio.get_running_loop().run_in_executor(self._io, fn, *args)
        except UNAVAILABLE_ERRORS as exc:
            raise ApiError(503, "event log unavailable", [str(exc)]) from None
        except ConfigChangedError as exc:
            raise ApiError(409, "conflict", [str(exc)]) from None
        except UnknownAppError as exc:  # deleted from Redis since this replica loaded it
            raise unknown_app(exc.app) from None

    def _info(self, app: str) -> dict[str, Any]:
        rt = self.runtime(app)
        config = self.log.configs.get(app) or rt.engine.config
        models = self.log.models.list(app)
        return {
            "name": app,
            "config": config.model_dump(mode="json", by_alias=True),
            "config_version": self.log.configs.version(app),
            "model_version": self.log.models.version(app),
            "served_model_version": rt.engine.model_version,
            # None, or why the stored config is not the one this replica serves
            "config_error": rt.watcher.config_error,
            "models": [
                {"version": m.version, "n_learned": m.n_learned, "created_at": m.created_at}
                for m in models
            ],
            "counters": self.log.joined.stats(app),
            "online_reward": self.log.joined.online_reward(app),
            "health": self.app_health(app),
        }

    async def info(self, app: str) -> dict[str, Any]:
        self.runtime(app)
        return await self._call(self._info, app)

    async def quarantine(self, app: str, limit: int) -> dict[str, Any]:
        """The newest events the learner could not learn, with why (see eventlog/quarantine.py)."""
        self.runtime(app)
        if not 1 <= limit <= 1000:
            msg = f"limit {limit}: send between 1 and 1000"
            raise ApiError(422, "invalid request", [{"loc": "limit", "msg": msg}])
        entries = await self._call(self.log.quarantine.list, app, limit)
        count = await self._call(self.log.quarantine.count, app)
        return {"app": app, "count": count, "entries": entries}

    async def metrics_text(self) -> bytes:
        """The service-wide Prometheus metrics, from Redis (see reporting.prometheus); while
        Redis cannot be reached, this replica's own (its counters, why it is degraded)."""
        try:
            return await self._call(self.cluster_metrics.render, self.app_names())
        except ApiError as exc:
            if exc.status != 503:
                raise
            return self.metrics.render()

    def _patch(self, app: str, patch: dict[str, Any], actor: str = "open") -> dict[str, Any]:
        rt = self.runtime(app)
        rollback = patch.pop(ROLLBACK_FIELD, None)
        if rollback is not None and (
            isinstance(rollback, bool) or not isinstance(rollback, int) or rollback < 1
        ):
            raise ApiError(
                422,
                "invalid request",
                [{"loc": ROLLBACK_FIELD, "msg": "a model version: an integer ≥ 1"}],
            )
        if patch:  # a compare-and-set: concurrent PATCHes of different fields both hold
            config = self.log.configs.update(app, lambda current: patched_config(current, patch))
            if "privacy" in patch:
                apply_retention(self.log, config)
            detail = {"patch": patch, "config_version": self.log.configs.version(app)}
            record_action(self.log.client, app, "config_change", actor, detail)
        if rollback is not None:
            known = {m.version for m in self.log.models.list(app)}
            if rollback not in known:
                msg = f"model version {rollback} is not kept; kept: {sorted(known)}"
                raise ApiError(422, "invalid request", [{"loc": ROLLBACK_FIELD, "msg": msg}])
            self.log.models.rollback(app, rollback)
            record_action(self.log.client, app, "rollback", actor, {"version": rollback})
        rt.watcher.poll()  # live on this replica before the answer; others within a poll
        return self._info(app)

    async def patch(self, app: str, body: bytes, actor: str = "open") -> dict[str, Any]:
        self.runtime(app)
        data = parse_object(body, "a JSON object (a merge patch)")
        return await self._call(self._patch, app, data, actor)

    async def discovery(self, app: str, body: bytes) -> dict[str, Any]:
        """Optimization discovery on the app's joined stream (serving/discovery.py)."""
        from .discovery import DiscoveryRequest, run_discovery

        rt = self.runtime(app)
        data = parse_json(body) if body.strip() else {}
        try:
            request = DiscoveryRequest.model_validate(data)
        except ValidationError as exc:
            raise invalid(exc) from None
        return await self._call(run_discovery, self.log, app, rt.engine.config, request)
