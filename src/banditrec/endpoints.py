"""The API's endpoints, each once: the request it makes and how its answer is read.

`banditrec.client` sends these calls: `Client` waits for each answer, `AsyncClient` awaits
it, and both retry by the same rule. A call is plain data, so the two clients share every
path, body and reading of an answer.

    >>> call = Endpoints.activate(Scope("content"), "e1")
    >>> call.method, call.path, call.read({"event_id": "e1", "activated": True})
    ('POST', '/v1/apps/content/events/e1/activate', True)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson

from .decision.schema import Decision, RankedAction, SlotDecision, new_event_id
from .slates.schema import SlateDecision, slate_from_json, slate_request_body

T = TypeVar("T")
U = TypeVar("U")


class Scope:
    """The app a call goes to when the call does not name one (what both clients are)."""

    def __init__(self, app: str | None = None) -> None:
        self.app = app

    def _app(self, app: str | None) -> str:
        name = app or self.app
        if not name:
            raise ValueError("name the app: Client(app=...) or app=... on the call")
        return name


def _ranking(items: Sequence[Mapping[str, Any]]) -> list[RankedAction]:
    return [RankedAction(r["id"], float(r["probability"])) for r in items]


def decision_from_json(d: Mapping[str, Any]) -> Decision:
    slots = d.get("slots")
    return Decision(
        event_id=d["event_id"],
        action_id=d.get("action_id"),
        probability=d.get("probability"),
        ranking=_ranking(d.get("ranking") or []),
        model_version=int(d.get("model_version", 0)),
        mode=d.get("mode", "online"),
        slots=None
        if slots is None
        else [
            SlotDecision(s["slot"], s["action_id"], float(s["probability"]), _ranking(s["ranking"]))
            for s in slots
        ],
        arm=d.get("arm"),
        arm_probability=d.get("arm_probability"),
    )


def decision_request(
    context: Mapping[str, Any] | None = None,
    actions: Sequence[Mapping[str, Any] | str] | None = None,
    *,
    slots: Sequence[Mapping[str, Any]] | None = None,
    event_id: str | None = None,
    exploration: Mapping[str, float] | None = None,
    deferred: bool = False,
    unit_id: str | None = None,
) -> dict[str, Any]:
    """A decision request body, with its event id fixed now (so retries are idempotent).
    An action may be given as a bare id; `unit_id` is the unit (a user) an app's
    experiment assigns to an arm."""
    body: dict[str, Any] = {"event_id": event_id or new_event_id(), "context": dict(context or {})}
    if actions is not None:
        body["actions"] = [{"id": a} if isinstance(a, str) else dict(a) for a in actions]
    if slots is not None:
        body["slots"] = [dict(s) for s in slots]
    if exploration is not None:
        body["exploration"] = dict(exploration)
    if deferred:
        body["deferred"] = True
    if unit_id is not None:
        body["unit_id"] = unit_id
    return body


def _with_event_id(request: Mapping[str, Any]) -> dict[str, Any]:
    body = dict(request)
    body.setdefault("event_id", new_event_id())
    return body


def _reward_body(rewards: Iterable[Any]) -> dict[str, Any]:
    out = []
    for r in rewards:
        if isinstance(r, Mapping):
            out.append(dict(r))
        elif isinstance(r, tuple):
            out.append({"event_id": r[0], "value": r[1], **({"slot": r[2]} if len(r) > 2 else {})})
        else:  # a banditrec.decision.schema.Reward
            out.append(r.model_dump(exclude_none=True))
    return {"rewards": out}


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request of the API and how its answer is read: what both clients send."""

    method: str
    path: str
    body: Any = None
    idempotent: bool = True
    read: Callable[[Any], T] = lambda out: out

    @property
    def content(self) -> bytes | None:
        return None if self.body is None else orjson.dumps(self.body)

    def then(self, read: Callable[[T], U]) -> Call[U]:
        first = self.read
        return Call(
            self.method, self.path, self.body, self.idempotent, lambda out: read(first(out))
        )


class Endpoints:
    """The API's endpoints as `Call`s; each client gets a method per endpoint that sends it
    (`Client.decide` returns a `Decision`, `AsyncClient.decide` an awaitable of one)."""

    def decide(
        c: Scope,
        context: Mapping[str, Any] | None = None,
        actions: Sequence[Any] | None = None,
        *,
        app: str | None = None,
        **options: Any,
    ) -> Call[Decision]:
        """One decision; `options` as `decision_request` takes them."""
        body = decision_request(context, actions, **options)
        return Call("POST", f"/v1/apps/{c._app(app)}/decisions", body, read=decision_from_json)

    def decide_batch(
        c: Scope, requests: Iterable[Mapping[str, Any]], *, app: str | None = None
    ) -> Call[list[Decision]]:
        """Many decisions; each request body gets its event id now."""
        body = {"requests": [_with_event_id(r) for r in requests]}
        return Call(
            "POST",
            f"/v1/apps/{c._app(app)}/decisions:batch",
            body,
            read=lambda out: [decision_from_json(d) for d in out["decisions"]],
        )

    def decide_slate(
        c: Scope,
        context: Mapping[str, Any] | None,
        actions: Sequence[Any],
        *,
        app: str | None = None,
        **options: Any,
    ) -> Call[SlateDecision]:
        """A slate: `positions`, `rules`, `event_id`, `exploration`, `deferred` as options."""
        body = slate_request_body(dict(context or {}), list(actions), **options)
        return Call("POST", f"/v1/apps/{c._app(app)}/slates", body, read=slate_from_json)

    def rewards(c: Scope, rewards: Iterable[Any], *, app: str | None = None) -> Call[list[str]]:
        """Rewards as dicts, `Reward`s or (event_id, value[, slot]) tuples; their outcomes."""
        return Call(
            "POST",
            f"/v1/apps/{c._app(app)}/rewards",
            _reward_body(rewards),
            idempotent=False,
            read=lambda out: [o["outcome"] for o in out["outcomes"]],
        )

    def reward(
        c: Scope, event_id: str, value: float, *, slot: str | None = None, app: str | None = None
    ) -> Call[str]:
        """One reward; its outcome."""
        return Endpoints.rewards(c, [(event_id, value, slot)], app=app).then(lambda o: o[0])

    def activate(c: Scope, event_id: str, *, app: str | None = None) -> Call[bool]:
        """Activate a deferred decision; whether it was activated now."""
        path = f"/v1/apps/{c._app(app)}/events/{event_id}/activate"
        return Call("POST", path, read=lambda out: bool(out["activated"]))

    def apps(c: Scope) -> Call[list[str]]:
        """The apps the key can use."""
        return Call("GET", "/v1/apps", read=lambda out: list(out["apps"]))

    def app_info(c: Scope, app: str | None = None) -> Call[dict[str, Any]]:
        """The app's config, models, counters and online reward."""
        return Call("GET", f"/v1/apps/{c._app(app)}")

    def patch_app(
        c: Scope, patch: Mapping[str, Any], *, app: str | None = None
    ) -> Call[dict[str, Any]]:
        """A JSON merge patch of the app's config; the app's info after it."""
        return Call("PATCH", f"/v1/apps/{c._app(app)}", dict(patch), idempotent=False)

    def rollback(c: Scope, version: int, *, app: str | None = None) -> Call[dict[str, Any]]:
        """Serve an earlier model version again."""
        return Endpoints.patch_app(c, {"rollback_to": version}, app=app)

    def report(
        c: Scope, *, app: str | None = None, resolution: str = "hour", hours: float = 24.0
    ) -> Call[dict[str, Any]]:
        """The app's online report: per arm, and its experiment's state (docs/reporting.md)."""
        return Call("GET", _report_path(c._app(app), resolution, hours))


ENDPOINTS = [name for name in vars(Endpoints) if not name.startswith("_")]


def _report_path(app: str, resolution: str, hours: float) -> str:
    return f"/v1/apps/{app}/report?resolution={resolution}&hours={hours:g}"


__all__ = ["ENDPOINTS", "Call", "Endpoints", "Scope", "decision_from_json", "decision_request"]
