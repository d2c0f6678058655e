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
from ..schema import Decision, DecisionRequest, Reward
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


class Liveness(BaseModel):
    status: str = Field(description="`ok`, or `degraded` (still serving; see why)")
    degraded: list[str] = Field(description="why the replica is degraded: spooling, ...")
    apps: dict[str, list[str]] = Field(description="per app, why it is degraded")


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
    models: list[ModelInfo]
    counters: dict[str, int | float]
    online_reward: OnlineReward
    health: AppHealth


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
}
_RESPONSES: dict[str, Any] = {
    "Decision": Decision,
    "DecisionBatchResult": DecisionBatchResult,
    "RewardOutcome": RewardOutcome,
    "RewardOutcomes": RewardOutcomes,
    "Activated": Activated,
    "AppList": AppList,
    "AppInfo": AppInfo,
    "Health": Health,
    "Liveness": Liveness,
    "ErrorBody": ErrorBody,
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
    400: "Malformed JSON or header.",
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
    "patch_app": {
        "summary": "Change an app live (exploration, mode, ...) or roll its model back",
        "body": _ref("AppPatch"),
        "ok": _ref("AppInfo"),
        "errors": (400, 401, 403, 404, 409, 413, 422, 503),
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


def route_docs(name: str) -> dict[str, Any]:
    """Keyword arguments of a route decorator documenting that route."""
    spec = _ROUTES[name]
    responses: dict[int | str, Any] = {
        200: {
            "description": "Success",
            "content": spec.get("ok_content") or _content(spec["ok"]),
        }
    }
    for status in spec["errors"]:
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
