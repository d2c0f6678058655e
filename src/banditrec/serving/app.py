"""The HTTP API (FastAPI; OpenAPI at /docs).

Bodies are read raw, size-checked before parsing, parsed with orjson and validated with
the app's own limits, so the documented schemas (added to the OpenAPI document by
`openapi.py`) and the checks that run are the same pydantic models.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi_offline import FastAPIOffline
from starlette.responses import Response

from .. import __version__
from .audit import actor_of
from .auth import Scope, credential_from_headers
from .errors import ApiError, install_error_handlers
from .metrics import CONTENT_TYPE_LATEST
from .openapi import install_openapi, route_docs
from .personalizer_routes import install_personalizer
from .privacy_routes import install_privacy_routes
from .reports import install_reports
from .service import DecisionService

JSON = "application/json"


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type=JSON)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed `limit`."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise ApiError(400, "bad Content-Length header") from None
        if size > limit:
            raise ApiError(413, "request too large", [f"{size} bytes; the limit is {limit}"])
        return await request.body()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "request too large", [f"more than {limit} bytes"])
        chunks.append(chunk)
    return b"".join(chunks)


def create_api(service: DecisionService) -> FastAPI:
    # Swagger UI's script and stylesheet come from the installed fastapi-offline package,
    # so /docs works on a machine without internet access (no CDN).
    api = FastAPIOffline(
        title="banditrec",
        version=__version__,
        description="Decisions per impression with tunable exploration, rewards, online learning.",
        docs_url="/docs",
        redoc_url=None,
        static_url="/docs-assets",
    )
    metrics = service.metrics
    limit = service.http.max_body_bytes

    def on_error(request: Request, status: int) -> None:
        metrics.errors.labels(request.path_params.get("app", ""), str(status)).inc()

    install_error_handlers(api, on_error)
    install_openapi(api)
    install_reports(api, service)  # the online report and the dashboard page

    def credential(request: Request) -> str | None:
        if service.keyring.open:  # no keys to check: headers meant for a proxy pass through
            return None
        headers = request.headers
        return credential_from_headers(headers.get("authorization"), headers.get("x-api-key"))

    def authorize(request: Request, app: str, scope: Scope) -> None:
        service.keyring.authorize(credential(request), app, scope)

    # The hot routes take the app from the path themselves: a typed path parameter costs
    # FastAPI a validation step per request (~5% of a loaded replica's time); the app name
    # is checked against the loaded apps anyway.
    def decision_route(
        path: str, name: str, decide: Callable[[str, bytes], Awaitable[Any]]
    ) -> None:
        """A route that decides: the app from the path, the 'decide' scope, timed as `name`."""
        seconds = metrics.latency.labels(name)  # resolved once, not per request

        @api.post(path, name=name, **route_docs(name))
        async def route(request: Request) -> Response:
            started = time.perf_counter()
            app = request.path_params["app"]
            authorize(request, app, "decide")
            response = _json(await decide(app, await read_body(request, limit)))
            seconds.observe(time.perf_counter() - started)
            return response

    async def decide_batch(app: str, body: bytes) -> dict[str, Any]:
        return {"decisions": await service.decide_batch(app, body)}

    decision_route("/v1/apps/{app}/decisions", "decide", service.decide)
    decision_route("/v1/apps/{app}/decisions:batch", "decide_batch", decide_batch)
    decision_route("/v1/apps/{app}/slates", "decide_slate", service.decide_slate)

    @api.post("/v1/apps/{app}/rewards", **route_docs("rewards"))
    async def rewards(request: Request) -> Response:
        app = request.path_params["app"]
        authorize(request, app, "reward")
        return _json(await service.rewards(app, await read_body(request, limit)))

    @api.post("/v1/apps/{app}/events/{event_id}/activate", **route_docs("activate"))
    async def activate(app: str, event_id: str, request: Request) -> Response:
        authorize(request, app, "reward")
        return _json(await service.activate(app, event_id))

    @api.get("/v1/apps", **route_docs("list_apps"))
    async def list_apps(request: Request) -> Response:
        record = service.keyring.authenticate(credential(request))
        return _json({"apps": service.keyring.visible_apps(record, service.app_names())})

    @api.get("/v1/apps/{app}", **route_docs("app_info"))
    async def app_info(app: str, request: Request) -> Response:
        authorize(request, app, "admin")
        return _json(await service.info(app))

    @api.get("/v1/apps/{app}/quarantine", **route_docs("quarantine"))
    async def quarantine(app: str, request: Request, limit: int = 100) -> Response:
        authorize(request, app, "admin")
        return _json(await service.quarantine(app, limit))

    @api.patch("/v1/apps/{app}", **route_docs("patch_app"))
    async def patch_app(app: str, request: Request) -> Response:
        actor = actor_of(service.keyring.authorize(credential(request), app, "admin"))
        return _json(await service.patch(app, await read_body(request, limit), actor))

    @api.post("/v1/apps/{app}/discovery", **route_docs("discovery"))
    async def discovery(app: str, request: Request) -> Response:
        authorize(request, app, "admin")
        return _json(await service.discovery(app, await read_body(request, limit)))

    def stale() -> dict[str, Any]:
        stale = service.config_errors()
        return {"stale_configs": stale} if stale else {}

    @api.get("/healthz", **route_docs("healthz"))
    async def healthz() -> Response:
        return _json({**service.health(), **stale()})  # alive: 200, degraded or not

    @api.get("/readyz", **route_docs("readyz"))
    async def readyz() -> Response:
        if not service.app_names() or not service.ready():
            return _json({"status": "not ready", "apps": service.app_names()}, status=503)
        return _json({"status": "ready", "apps": service.app_names(), **stale()})

    @api.get("/metrics", **route_docs("metrics"))
    async def prometheus_metrics() -> Response:
        return Response(await service.metrics_text(), media_type=CONTENT_TYPE_LATEST)

    install_personalizer(api, service)  # Azure Personalizer's API, beside ours
    install_privacy_routes(api, service, credential)
    return api
