"""Azure Personalizer's REST API on the HTTP app: its paths, keys header and error shape.

An app is a Personalizer resource whose endpoint is `http://<host>:<port>/apps/<app>`: the
SDKs and quickstarts then call `<endpoint>/personalizer/v1.0/rank`,
`…/v1.1-preview.1/multislot/rank`, `…/personalizer/rank?api-version=…` (the 2022-09-01-preview
SDK) and so on. The `Ocp-Apim-Subscription-Key` header carries a banditrec API key. One
route serves them all: `OPERATIONS` maps each path to the `PersonalizerApi` call that does
its work (serving/personalizer.py), where a rank becomes a decision on the decide → log →
join → learn path like any other. Errors answer in Personalizer's shape,
`{"error": {"code", "message", "details": [{"code", "message", "target"}]}}`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI, Request
from starlette.responses import Response

from .auth import Scope, credential_from_headers
from .errors import ApiError
from .personalizer import PersonalizerApi
from .service import DecisionService

VERSIONS = frozenset({"v1.0", "v1.1-preview.1", "v1.1-preview.2", "v1.1-preview.3"})
_STATUS_CODES = {401: "Unauthorized", 403: "Forbidden", 404: "ResourceNotFound"}
_STATUS_CODES |= {409: "OperationNotAllowed", 413: "BadRequest", 503: "ServiceUnavailable"}


def error_body(status: int, code: str, exc: ApiError) -> dict[str, Any]:
    details = [
        {"code": code, "message": d["msg"], **({"target": d["loc"]} if d.get("loc") else {})}
        for d in exc.detail
    ]
    message = exc.error + (": " + "; ".join(d["message"] for d in details) if details else "")
    return {"error": {"code": code, "message": message, "details": details}}


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
