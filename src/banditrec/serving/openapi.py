"""The OpenAPI document: request and response schemas of the routes that read raw bodies.

The routes parse their bodies themselves (size limit first, orjson, the app's limits),
so FastAPI cannot see the models; they are declared here from the same pydantic models
and dataclasses the service validates and returns.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from ..config import AppConfig
from ..decision.schema import Decision, DecisionRequest, Reward
from ..slates.schema import SlateDecision, SlateRequest
from .discovery import DiscoveryRequest
from .errors import ErrorBody

JSON = "application/json"
_REF = "#/components/schemas/{model}"


class DecisionBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    requests: list[DecisionRequest] = Field(min_length=1)


class RewardBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rewards: list[Reward] = Field(min_length=1)


class DecisionBatchResult(BaseModel):
    decisions: list[Decision]


class RewardOutcome(BaseModel):
    event_id: str
    slot: str | None
    outcome: str = Field(description="accepted, duplicate, unknown_event or already_joined")


class RewardOutcomes(BaseModel):
    outcomes: list[RewardOutcome]


class Activated(BaseModel):
    event_id: str
    activated: bool


class AppList(BaseModel):
    apps: list[str]


class Health(BaseModel):
    status: str
    apps: list[str] | None = None
    stale_configs: dict[str, str] | None = Field(
        None,
        description="Apps served with their last good config (the stored one is unusable), and why.",
    )


class Liveness(BaseModel):
    status: str = Field(description="`ok`, or `degraded` (still serving; see why)")
    degraded: list[str] = Field(description="why the replica is degraded: spooling, ...")
    apps: dict[str, list[str]] = Field(description="per app, why it is degraded")
    stale_configs: dict[str, str] | None = Field(
        None,
        description="Apps served with their last good config (the stored one is unusable), and why.",
    )


class ModelInfo(BaseModel):
    version: int
    n_learned: int
    created_at: float


class OnlineReward(BaseModel):
    events: int = Field(description="Joined events the estimate is over (the most recent).")
    mean: float | None = Field(description="Mean reward of the served decisions.")
    ci95: float | None = Field(description="Half-width of a normal 95% interval of the mean.")


class AppHealth(BaseModel):
    status: str = Field(description="`ok`, or `degraded` (still serving; see why)")
    degraded: list[str] = Field(
        description="spooling, event_log_unreachable, learner_behind, last_good_config"
    )
    details: dict[str, str] = Field(description="the app's own reasons, explained")


class AppInfo(BaseModel):
    name: str
    config: AppConfig
    config_version: int
    model_version: int = Field(description="The current model in the registry.")
    served_model_version: int = Field(description="The model the answering replica serves.")
    config_error: str | None = Field(
        None,
        description="Set when the stored config is unusable: the replica serves its last good one.",
    )
    models: list[ModelInfo]
    counters: dict[str, int | float]
    online_reward: OnlineReward
    health: AppHealth


class DiscoveryResult(BaseModel):
    """The ranked settings visited, the recommendation and its reason (replay/discovery.py)."""

    model_config = ConfigDict(extra="allow")
    recommendation: str
    reason: str
    current: str
    primary: str
    n_rows: int
    results: list[dict[str, Any]]
    path: list[dict[str, str]]
    recommended_config: AppConfig | None


class QuarantinedEvent(BaseModel):
    id: str = Field(description="Its id in the quarantine stream.")
    joined_id: str = Field(description="Its id in the joined stream it was read from.")
    event_id: str
    slot: str
    why: str = Field(description="What the learner raised on it.")
    quarantined_at: float
    record: str = Field(description="The DSJson record as logged (JSON text).")


class QuarantineList(BaseModel):
    app: str
    count: int = Field(description="Entries kept in the quarantine.")
    entries: list[QuarantinedEvent] = Field(description="The newest first.")


class AppPatch(BaseModel):
    """A JSON merge patch of the app's config (null resets a field), plus an optional rollback."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {"policy": {"explorer": {"epsilon": 0.2}}},
                {"mode": "apprentice"},
                {"rollback_to": 3},
            ]
        },
    )
    rollback_to: int | None = Field(None, ge=1, description="Make this kept model version current.")


_REQUESTS: dict[str, Any] = {
    "DecisionRequest": DecisionRequest,
    "DecisionBatch": DecisionBatch,
    "Reward": Reward,
    "RewardBatch": RewardBatch,
    "AppPatch": AppPatch,
    "DiscoveryRequest": DiscoveryRequest,
    "SlateRequest": SlateRequest,
}
_RESPONSES: dict[str, Any] = {
    "Decision": Decision,
    "DecisionBatchResult": DecisionBatchResult,
    "RewardOutcome": RewardOutcome,
    "RewardOutcomes": RewardOutcomes,
    "Activated": Activated,
    "AppList": AppList,
    "AppInfo": AppInfo,
    "QuarantineList": QuarantineList,
    "Health": Health,
    "DiscoveryResult": DiscoveryResult,
    "Liveness": Liveness,
    "ErrorBody": ErrorBody,
    "SlateDecision": SlateDecision,
}


def component_schemas() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for names, mode in ((_REQUESTS, "validation"), (_RESPONSES, "serialization")):
        for name, tp in names.items():
            schema = TypeAdapter(tp).json_schema(ref_template=_REF, mode=mode)
            for def_name, definition in schema.pop("$defs", {}).items():
                out.setdefault(def_name, definition)
            out[name] = schema
    return out


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": _REF.format(model=name)}


def _content(schema: dict[str, Any]) -> dict[str, Any]:
    return {JSON: {"schema": schema}}


_ERRORS = {
    400: "Malformed JSON, or 'Authorization' and 'X-API-Key' carrying different keys.",
    401: "No API key, or not a valid one.",
    403: "The key is not valid for this app or lacks the scope.",
    404: "No such app (or event).",
    409: "The config kept changing under this update (concurrent updates); send it again.",
    413: "The body exceeds the size limit.",
    422: "The body does not validate; `detail` names each field and what to fix.",
    503: "The event log cannot be reached; nothing was recorded.",
}
_AUTH = [{"ApiKeyHeader": []}, {"Bearer": []}]

_ROUTES: dict[str, dict[str, Any]] = {
    "decide": {
        "app_param": True,
        "summary": "Decide one impression (or one action per slot)",
        "body": _ref("DecisionRequest"),
        "ok": _ref("Decision"),
        "errors": (400, 401, 403, 404, 413, 422, 503),
        "description": "Logged before the answer. The same event id answers with the decision "
        "logged the first time, so retries are safe.",
    },
    "decide_slate": {
        "app_param": True,
        "summary": "Decide a slate: k of the N actions offered, ranked under rules",
        "body": _ref("SlateRequest"),
        "ok": _ref("SlateDecision"),
        "errors": (400, 401, 403, 404, 413, 422, 503),
        "description": "Each position's probability is conditional on the positions above. "
        'Rewards per position: `slot` = the position ("1", "2", …); without `slot`, a reward '
        "counts for every position. Logged before the answer; a repeated event id answers "
        "with the slate logged the first time. See docs/slates.md.",
    },
    "decide_batch": {
        "app_param": True,
        "summary": "Decide many impressions",
        "body": _ref("DecisionBatch"),
        "ok": _ref("DecisionBatchResult"),
        "errors": (400, 401, 403, 404, 413, 422, 503),
    },
    "rewards": {
        "app_param": True,
        "summary": "Report one reward or many",
        "body": {"anyOf": [_ref("Reward"), _ref("RewardBatch")]},
        "ok": {"anyOf": [_ref("RewardOutcome"), _ref("RewardOutcomes")]},
        "errors": (400, 401, 403, 404, 413, 422, 503),
    },
    "activate": {
        "summary": "Activate a deferred decision",
        "ok": _ref("Activated"),
        "errors": (401, 403, 404, 422, 503),
    },
    "list_apps": {"summary": "The apps this key can use", "ok": _ref("AppList"), "errors": (401,)},
    "app_info": {
        "summary": "An app's config, models, counters and online reward",
        "ok": _ref("AppInfo"),
        "errors": (401, 403, 404, 503),
    },
    "quarantine": {
        "summary": "Events the learner could not learn, kept aside (newest first, ?limit=1..1000)",
        "ok": _ref("QuarantineList"),
        "errors": (401, 403, 404, 422, 503),
    },
    "patch_app": {
        "summary": "Change an app live (exploration, mode, ...) or roll its model back",
        "body": _ref("AppPatch"),
        "ok": _ref("AppInfo"),
        "errors": (400, 401, 403, 404, 409, 413, 422, 503),
    },
    "discovery": {
        "summary": "Search learning settings on the app's own joined events and recommend one",
        "description": "Counterfactual training of VW settings (interactions, explorers, "
        "learning rates, cb types) around the app's policy; the app is not changed.",
        "body": _ref("DiscoveryRequest"),
        "ok": _ref("DiscoveryResult"),
        "errors": (400, 401, 403, 404, 413, 422, 503),
    },
    "healthz": {
        "summary": "Liveness, and any degraded state",
        "ok": _ref("Liveness"),
        "errors": (),
        "open": True,
    },
    "readyz": {
        "summary": "Readiness: the apps are loaded and decisions can be logged",
        "ok": _ref("Health"),
        "errors": (),
        "extra": {503: {"description": "Not ready", "content": _content(_ref("Health"))}},
        "open": True,
    },
    "metrics": {
        "summary": "Prometheus metrics",
        "errors": (),
        "open": True,
        "ok_content": {"text/plain": {"schema": {"type": "string"}}},
    },
}


def route_docs(name: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    """Keyword arguments of a route decorator documenting the route `name`: its entry in the
    table above, or `spec` of the same form for a route documented where it is declared."""
    spec = _ROUTES[name] if spec is None else spec
    responses: dict[int | str, Any] = {
        200: {
            "description": "Success",
            "content": spec.get("ok_content") or _content(spec["ok"]),
        }
    }
    # Every route behind a key may answer 400 (two headers carrying different keys) and 401.
    keyed = () if spec.get("open") else (400, 401)
    for status in sorted({*spec["errors"], *keyed}):
        responses[status] = {"description": _ERRORS[status], "content": _content(_ref("ErrorBody"))}
    responses.update(spec.get("extra", {}))
    extra: dict[str, Any] = {}
    if spec.get("app_param"):  # read from the path by the route itself (see app.py)
        extra["parameters"] = [
            {"name": "app", "in": "path", "required": True, "schema": {"type": "string"}}
        ]
    if "body" in spec:
        extra["requestBody"] = {"required": True, "content": _content(spec["body"])}
    if not spec.get("open"):
        extra["security"] = _AUTH
    return {
        "summary": spec["summary"],
        "description": spec.get("description", ""),
        "responses": responses,
        "openapi_extra": extra,
        "operation_id": name,
    }


def install_openapi(api: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            schema = get_openapi(
                title=api.title, version=api.version, description=api.description, routes=api.routes
            )
            components = schema.setdefault("components", {})
            components.setdefault("schemas", {}).update(component_schemas())
            components["securitySchemes"] = {
                "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "Bearer": {"type": "http", "scheme": "bearer"},
            }
            api.openapi_schema = schema
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]
