"""Azure Personalizer's REST API, served beside banditrec's own (see docs/personalizer.md).

An app is a Personalizer resource whose endpoint is `http://<host>:<port>/apps/<app>`: the
SDKs and quickstarts then call `<endpoint>/personalizer/v1.0/rank`,
`…/v1.1-preview.1/multislot/rank`, `…/personalizer/rank?api-version=…` (the 2022-09-01-preview
SDK) and so on. The `Ocp-Apim-Subscription-Key` header carries a banditrec API key.

Each call becomes the native one: a rank is a decision (logged, joined and learned like any
other), `deferActivation` is `deferred`, a reward is a reward, the service configuration and
the learning settings are a PATCH of the app's config. Errors answer in Personalizer's shape,
`{"error": {"code", "message", "details": [{"code", "message", "target"}]}}`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import Response

from ..config import AppConfig
from ..decision.schema import Decision, SlotDecision
from ..personalizer.features import namespaced, slot_name
from ..personalizer.settings import (
    DEFAULT_LEARNING_SETTINGS,
    LearningSettingsError,
    config_patch,
    learning_settings,
    parse_learning_settings,
    service_configuration,
)
from ..policies import make_policy
from .auth import Scope, credential_from_headers
from .errors import ApiError, validation_detail
from .service import DecisionService, parse_json, parse_object

VERSIONS = frozenset({"v1.0", "v1.1-preview.1", "v1.1-preview.2", "v1.1-preview.3"})
_STATUS_CODES = {401: "Unauthorized", 403: "Forbidden", 404: "ResourceNotFound"}
_STATUS_CODES |= {409: "OperationNotAllowed", 413: "BadRequest", 503: "ServiceUnavailable"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class RankableAction(_Model):
    id: str = Field(min_length=1, max_length=256)
    features: list[Any] | None = None  # objects; checked by `_features` (no copy here)


class RankRequest(_Model):
    contextFeatures: list[Any] | None = None
    actions: list[RankableAction] = Field(min_length=1)
    excludedActions: list[str] | None = None
    eventId: str | None = Field(None, max_length=256)
    deferActivation: bool | None = None


class SlotRequest(_Model):
    id: str = Field(min_length=1, max_length=256)
    features: list[Any] | None = None  # objects; checked by `_features` (no copy here)
    excludedActions: list[str] | None = None
    baselineAction: str | None = None


class MultiSlotRankRequest(RankRequest):
    slots: list[SlotRequest] = Field(min_length=1)


class RewardRequest(_Model):
    value: float


class SlotReward(_Model):
    slotId: str = Field(min_length=1, max_length=256)
    value: float


class MultiSlotRewardRequest(_Model):
    reward: list[SlotReward] = Field(min_length=1)


class PolicyContract(_Model):
    name: str = Field(max_length=256)
    arguments: str = Field(max_length=1024)


def error_body(status: int, code: str, exc: ApiError) -> dict[str, Any]:
    details = [
        {"code": code, "message": d["msg"], **({"target": d["loc"]} if d.get("loc") else {})}
        for d in exc.detail
    ]
    message = exc.error + (": " + "; ".join(d["message"] for d in details) if details else "")
    return {"error": {"code": code, "message": message, "details": details}}


def _validated(model: type[BaseModel], data: Any) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(400, "invalid request", validation_detail(exc)) from None


def _features(objects: list[Any] | None, where: str, flat: bool = False) -> dict[str, Any]:
    try:
        return namespaced(objects, flat=flat)
    except ValueError as exc:
        raise ApiError(400, "invalid request", [{"loc": where, "msg": str(exc)}]) from None


def _action(action: RankableAction, where: str, flat: bool = False) -> dict[str, Any]:
    return {"id": action.id, "features": _features(action.features, f"{where}.features", flat)}


def _ranking(decision: Decision, excluded: list[str]) -> list[dict[str, Any]]:
    ranking = [{"id": r.id, "probability": r.probability} for r in decision.ranking]
    return ranking + [{"id": a, "probability": 0.0} for a in excluded]


class PersonalizerApi:
    """The routes' work, apart from HTTP: Personalizer's shapes ↔ the decision service."""

    def __init__(self, service: DecisionService) -> None:
        self.service = service

    def _event_id(self, event_id: str | None) -> str:
        return event_id if event_id is not None else self.service.event_ids()

    async def rank(self, app: str, body: bytes) -> dict[str, Any]:
        req: RankRequest = _validated(RankRequest, parse_json(body))
        excluded = set(req.excludedActions or ())
        event_id = self._event_id(req.eventId)
        if all(a.id in excluded for a in req.actions):
            raise ApiError(
                400, "invalid request", [{"loc": "actions", "msg": "every action is excluded"}]
            )

        def data(flat: bool) -> dict[str, Any]:
            return {
                "event_id": event_id,
                "context": _features(req.contextFeatures, "contextFeatures", flat),
                "actions": [
                    _action(a, f"actions[{i}]", flat)
                    for i, a in enumerate(req.actions)
                    if a.id not in excluded
                ],
                "deferred": bool(req.deferActivation),
            }

        decision, records = self._decide(app, data)
        decision = await self.service.log_decision(app, decision, records)
        kept = [a.id for a in req.actions if a.id in excluded]
        return {
            "ranking": _ranking(decision, kept),
            "eventId": decision.event_id,
            "rewardActionId": decision.action_id,
        }

    def _decide(self, app: str, data: Callable[[bool], dict[str, Any]]) -> tuple[Decision, list]:
        """Decide on the features as sent (flat namespaces: no pass over each feature); when
        they do not validate that way, on the full conversion (nested objects, lists, nulls)."""
        try:
            return self.service.decide_parsed(app, data(True))
        except ApiError as exc:
            if exc.status != 422:
                raise
        return self.service.decide_parsed(app, data(False))

    async def rank_multi_slot(self, app: str, body: bytes) -> dict[str, Any]:
        """One decision per slot, in order, each from the actions no earlier slot took (so each
        slot's logged probability is conditional on the slots above, as in Personalizer)."""
        req: MultiSlotRankRequest = _validated(MultiSlotRankRequest, parse_json(body))
        event_id = self._event_id(req.eventId)
        context = _features(req.contextFeatures, "contextFeatures")
        actions = {a.id: _action(a, f"actions[{i}]") for i, a in enumerate(req.actions)}
        names = [slot_name(s.id) for s in req.slots]
        if len(set(names)) != len(names):
            raise ApiError(
                400,
                "invalid request",
                [{"loc": "slots", "msg": f"slot ids must be unique as slot names, got {names}"}],
            )
        taken: set[str] = set()
        decided: list[tuple[Decision, list]] = []
        for i, (slot, name) in enumerate(zip(req.slots, names, strict=True)):
            excluded = taken | set(slot.excludedActions or ())
            ids = [a for a in actions if a not in excluded]
            if slot.baselineAction in ids:  # served first in apprentice mode, as in Personalizer
                ids.remove(slot.baselineAction)
                ids.insert(0, slot.baselineAction)
            if not ids:
                msg = "no action left for this slot (all excluded or taken by earlier slots)"
                raise ApiError(400, "invalid request", [{"loc": f"slots[{i}]", "msg": msg}])
            data = {
                "event_id": event_id,
                "context": {**context, **_features(slot.features, f"slots[{i}].features")},
                "slots": [{"id": name, "actions": [actions[a] for a in ids]}],
                "deferred": bool(req.deferActivation),
            }
            decision, records = self.service.decide_parsed(app, data, f"slots[{i}]")
            assert decision.slots is not None
            taken.add(decision.slots[0].action_id)
            decided.append((decision, records))
        first = decided[0][0]
        slots: list[SlotDecision] = [s for d, _ in decided for s in d.slots or ()]
        combined = Decision(event_id, None, None, [], first.model_version, first.mode, slots)
        records = [r for _, recs in decided for r in recs]
        decision = await self.service.log_decision(app, combined, records)
        by_name = {s.slot: s.action_id for s in decision.slots or ()}
        return {
            "slots": [
                {"id": s.id, "rewardActionId": by_name.get(n)}
                for s, n in zip(req.slots, names, strict=True)
            ],
            "eventId": event_id,
        }

    async def reward(self, app: str, event_id: str, body: bytes) -> None:
        req: RewardRequest = _validated(RewardRequest, parse_json(body))
        await self.service.rewards(app, orjson.dumps({"event_id": event_id, "value": req.value}))

    async def reward_multi_slot(self, app: str, event_id: str, body: bytes) -> None:
        req: MultiSlotRewardRequest = _validated(MultiSlotRewardRequest, parse_json(body))
        rewards = [
            {"event_id": event_id, "value": r.value, "slot": slot_name(r.slotId)}
            for r in req.reward
        ]
        await self.service.rewards(app, orjson.dumps({"rewards": rewards}))

    async def activate(self, app: str, event_id: str) -> None:
        await self.service.activate(app, event_id)

    async def _config(self, app: str) -> AppConfig:
        return AppConfig.model_validate((await self.service.info(app))["config"])

    async def _patch(self, app: str, patch: dict[str, Any]) -> AppConfig:
        info = await self.service.patch(app, orjson.dumps(patch))
        return AppConfig.model_validate(info["config"])

    async def get_service_configuration(self, app: str) -> dict[str, Any]:
        return service_configuration(await self._config(app))

    async def put_service_configuration(self, app: str, body: bytes) -> dict[str, Any]:
        data = parse_object(body, "a ServiceConfiguration object", status=400)
        try:
            patch = config_patch(await self._config(app), data)
        except ValueError as exc:
            raise ApiError(400, "invalid request", [str(exc)]) from None
        config = await self._patch(app, patch) if patch else await self._config(app)
        return service_configuration(config)

    async def get_policy(self, app: str) -> dict[str, Any]:
        config = await self._config(app)
        vw = [p for p in config.slot_policies().values() if p.kind == "vw"]
        if not vw:
            msg = f"the app's policy is {config.policy.kind!r}, not VW: it has no learning settings"
            raise ApiError(409, "conflict", [msg])
        return {"name": app, "arguments": learning_settings(vw[0])}

    async def put_policy(self, app: str, body: bytes) -> dict[str, Any]:
        req: PolicyContract = _validated(PolicyContract, parse_json(body))
        return await self._set_policy(app, req.arguments)

    async def reset_policy(self, app: str) -> dict[str, Any]:
        return await self._set_policy(app, DEFAULT_LEARNING_SETTINGS)

    async def _set_policy(self, app: str, arguments: str) -> dict[str, Any]:
        config = await self._config(app)
        current = next(iter(config.slot_policies().values()))
        try:
            policy = parse_learning_settings(arguments, current if current.kind == "vw" else None)
            make_policy(policy)  # VW itself accepts the arguments, or the app is left as it was
        except (LearningSettingsError, ValueError, RuntimeError) as exc:
            raise ApiError(400, "invalid learning settings", [str(exc)]) from None
        dumped = policy.model_dump(mode="json", by_alias=True)
        if config.slots is None:
            patch: dict[str, Any] = {"policy": dumped}
        else:
            patch = {"slots": [{"name": s.name, "policy": dumped} for s in config.slots]}
        await self._patch(app, patch)
        return {"name": app, "arguments": learning_settings(policy)}


@dataclass(frozen=True, slots=True)
class Operation:
    """One Personalizer operation: the scope its key needs, its error code, its success status."""

    scope: Scope
    code: str
    status: int
    run: Callable[[PersonalizerApi, str, list[str], bytes], Awaitable[Any]]
    reads_body: bool = True
    multislot: bool = False


def _op(scope: Scope, code: str, status: int, run: Any, body: bool = True, multi: bool = False):
    return Operation(scope, code, status, run, body, multi)


# (method, path with the event id as "*") → operation
OPERATIONS: dict[tuple[str, str], Operation] = {
    ("POST", "rank"): _op("decide", "InvalidRankRequest", 201, lambda a, app, _, b: a.rank(app, b)),
    ("POST", "events/*/reward"): _op(
        "reward", "InvalidRewardRequest", 204, lambda a, app, p, b: a.reward(app, p[1], b)
    ),
    ("POST", "events/*/activate"): _op(
        "reward", "InvalidEventIdToActivate", 204, lambda a, app, p, _: a.activate(app, p[1]), False
    ),
    ("POST", "multislot/rank"): _op(
        "decide", "InvalidRankRequest", 201, lambda a, app, _, b: a.rank_multi_slot(app, b), multi=True
    ),
    ("POST", "multislot/events/*/reward"): _op(
        "reward", "InvalidRewardRequest", 204,
        lambda a, app, p, b: a.reward_multi_slot(app, p[2], b), multi=True,
    ),
    ("POST", "multislot/events/*/activate"): _op(
        "reward", "InvalidEventIdToActivate", 204,
        lambda a, app, p, _: a.activate(app, p[2]), False, multi=True,
    ),
    ("GET", "configurations/service"): _op(
        "admin", "InvalidServiceConfiguration", 200,
        lambda a, app, _, __: a.get_service_configuration(app), False,
    ),
    ("PUT", "configurations/service"): _op(
        "admin", "InvalidServiceConfiguration", 200,
        lambda a, app, _, b: a.put_service_configuration(app, b),
    ),
    ("GET", "configurations/policy"): _op(
        "admin", "InvalidPolicyConfiguration", 200, lambda a, app, _, __: a.get_policy(app), False
    ),
    ("PUT", "configurations/policy"): _op(
        "admin", "InvalidPolicyConfiguration", 200, lambda a, app, _, b: a.put_policy(app, b)
    ),
    ("DELETE", "configurations/policy"): _op(
        "admin", "InvalidPolicyConfiguration", 200, lambda a, app, _, __: a.reset_policy(app), False
    ),
}  # fmt: skip


def _operation(method: str, rest: str) -> tuple[Operation, list[str]]:
    """The operation a path below `/personalizer/` names, and its segments (version removed)."""
    parts = rest.split("/")
    version = parts[0] if parts and parts[0][:2] in ("v1", "v2", "v0") else None
    if version is not None:
        parts = parts[1:]
    key = "/".join(
        "*" if i == len(parts) - 2 and "events" in parts else p for i, p in enumerate(parts)
    )
    op = OPERATIONS.get((method, key))
    if op is None:
        known = {path for (m, path) in OPERATIONS if path == key}
        if known:
            raise ApiError(405, "method not allowed", [f"{method} is not served on {rest!r}"])
        raise ApiError(404, "not found", [f"no Personalizer operation at {rest!r}"])
    if version is not None and (version not in VERSIONS or (op.multislot and version == "v1.0")):
        raise ApiError(404, "not found", [f"no Personalizer API version {version!r} here"])
    return op, parts


def install_personalizer(fastapi: FastAPI, service: DecisionService) -> None:
    """Serve Personalizer's API at `/apps/{app}/personalizer/…` (any version), on the app.

    One route for every operation, dispatched by `OPERATIONS`: each route FastAPI and Serve
    try before the right one costs a match; 22 routes at the end of the list made the rank
    route 1.2-1.35x the native one's p50 (bench/bench_personalizer.py)."""
    from .app import read_body  # the app module calls this

    api = PersonalizerApi(service)
    limit = service.http.max_body_bytes

    def authorize(request: Request, app: str, scope: Scope) -> None:
        headers = request.headers
        key = headers.get("ocp-apim-subscription-key") or credential_from_headers(
            headers.get("authorization"), headers.get("x-api-key")
        )
        service.keyring.authorize(key, app, scope)

    async def endpoint(request: Request) -> Response:
        params = request.path_params
        app = params["app"]
        code = "BadRequest"
        try:
            op, parts = _operation(request.method, params["rest"])
            code = op.code
            authorize(request, app, op.scope)
            body = await read_body(request, limit) if op.reads_body else b""
            result = await op.run(api, app, parts, body)
        except ApiError as exc:
            service.metrics.errors.labels(app, str(exc.status)).inc()
            status = 400 if exc.status == 422 else exc.status
            error = error_body(status, _STATUS_CODES.get(status, code), exc)
            return Response(orjson.dumps(error), status, media_type="application/json")
        if result is None:
            return Response(status_code=op.status)
        return Response(orjson.dumps(result), op.status, media_type="application/json")

    # Personalizer's own REST reference documents these operations; our OpenAPI document (and
    # the fuzzing built on it) covers the native API.
    fastapi.add_api_route(
        "/apps/{app}/personalizer/{rest:path}",
        endpoint,
        methods=["GET", "POST", "PUT", "DELETE"],
        include_in_schema=False,
    )
    # Routes are tried in order, twice per request (Serve's metrics, then Starlette), at ~3.5 µs
    # each: right after the native decision route, a rank pays for one miss, not ~20.
    routes = fastapi.router.routes
    hot = next((i for i, r in enumerate(routes) if getattr(r, "name", "") == "decide"), None)
    if hot is not None:
        routes.insert(hot + 1, routes.pop())
