"""The request handling of one replica: decisions, rewards and admin calls, apart from HTTP.

The decision path is: validate → engine.decide_logged → records to Redis (acknowledged)
→ answer; rewards go to the event log, where they are joined with their decisions and
learned from. `DecisionService` is a `Replica` (serving/replica.py), which holds every app's
engine and keeps it current; the HTTP routes (serving/app.py) call the methods here.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from ..decision.schema import Decision, DecisionRequest, Reward
from ..decision.served import UnknownSlotError
from ..eventlog import EventLog
from ..eventlog.errors import ConfigChangedError, UnknownAppError
from ..privacy.retention import apply_retention
from ..slates.schema import SlateDecision
from .audit import record_action
from .decisions import decision_from_records, top_probability
from .errors import ApiError, invalid
from .patch import ROLLBACK_FIELD, patched_config
from .replica import UNAVAILABLE_ERRORS, AppRuntime, Replica, unknown_app
from .settings import ServiceSettings
from .slates import decide_slate
from .writer import DecisionWriter

log = logging.getLogger("banditrec.serving")

_REWARDS = TypeAdapter(list[Reward])


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


def with_event_id(data: Any, new_id: Callable[[], str]) -> Any:
    if isinstance(data, dict) and "event_id" not in data:
        data["event_id"] = new_id()
    return data


class DecisionService(Replica):
    """Decisions, rewards and admin calls for every app this replica serves."""

    def __init__(self, log: EventLog, settings: ServiceSettings, **replica: Any) -> None:
        """`replica`: `Replica`'s options (open_access, poll_interval_s, refresh_interval_s)."""
        self.event_ids = EventIds()
        super().__init__(log, settings, **replica)
        self.writer = DecisionWriter(log.decisions)
        # Rewards, activations and admin calls wait on Redis in threads of their own: in the
        # event loop's default pool they would queue behind whatever else the replica's
        # framework runs there.
        self._io = ThreadPoolExecutor(max_workers=8, thread_name_prefix="banditrec-eventlog")

    def close(self) -> None:
        self.writer.close()
        super().close()
        self._io.shutdown(wait=False)

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
