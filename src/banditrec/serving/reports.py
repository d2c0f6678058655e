"""HTTP routes of the online report and the dashboard page.

- `GET /v1/apps/{app}/report`: one app's report (buckets, window, totals, models);
- `GET /v1/report`: the report of every app the key may see (what the dashboard loads);
- `GET /` and `GET /dashboard`: the page; `GET /dashboard/static/<file>`: its assets.

The report is readable with any key valid for the app (any scope): the people who watch
an app are not all its admins. The page itself carries no data; it asks for a key and
calls the report routes with it. Rolling a model back from the page is the admin PATCH.
"""

from __future__ import annotations

import time
from importlib import resources
from typing import Any, Literal

import orjson
from fastapi import FastAPI, Query, Request
from starlette.responses import RedirectResponse, Response

from ..experiments.guard import Supervisor
from ..reporting import ReportStore
from ..reporting.report import max_hours, reports
from .auth import credential_from_headers
from .errors import ApiError
from .service import DecisionService

_STATIC = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
_OBJECT = {"application/json": {"schema": {"type": "object"}}}
_DOCS = {
    200: {"description": "The report", "content": _OBJECT},
    **{
        s: {"description": d, "content": _ERROR}
        for s, d in [
            (400, "Two headers carrying different keys: send the key in one."),
            (401, "No API key, or not a valid one."),
            (403, "The key is not valid for this app."),
            (404, "No such app."),
            (422, "A query parameter is out of range; `detail` says which."),
            (503, "The event log cannot be reached."),
        ]
    },
}
_SECURITY = {"security": [{"ApiKeyHeader": []}, {"Bearer": []}]}
Resolution = Literal["minute", "hour"]


def _asset(name: str) -> bytes:
    return resources.files("banditrec.serving").joinpath("static", name).read_bytes()


def install_reports(api: FastAPI, service: DecisionService) -> None:
    store = ReportStore(service.log.client)
    supervisor = Supervisor(service.log)
    page = _asset("dashboard.html")

    def viewer_apps(request: Request, apps: list[str]) -> list[str]:
        h = request.headers
        record = service.keyring.authenticate(
            credential_from_headers(h.get("authorization"), h.get("x-api-key"))
        )
        return service.keyring.visible_apps(record, apps)

    def build(apps: list[str], resolution: str, hours: float) -> dict[str, Any]:
        try:
            out = reports(store, apps, resolution=resolution, hours=hours)
        except ValueError as exc:
            raise ApiError(422, "invalid request", [{"loc": "hours", "msg": str(exc)}]) from None
        for app, report in out.items():
            rt = service.runtime(app)
            report["mode"] = rt.engine.config.mode
            exp = rt.engine.config.experiment
            if exp is not None:
                state = supervisor.state(app) or {}
                report["experiment"] = {
                    **exp.model_dump(mode="json"),
                    "srm": state.get("srm"),
                    # per arm: online on its slice, off-policy on all arms' traffic
                    "estimates": state.get("estimates"),
                    "events": supervisor.events(app),
                }
            report["model_version"] = service.log.models.version(app)
            report["models"] = [
                {"version": m.version, "n_learned": m.n_learned, "created_at": m.created_at}
                for m in service.log.models.list(app)
            ]
        return out

    def _json(data: Any) -> Response:
        return Response(orjson.dumps(data), media_type="application/json")

    @api.get(
        "/v1/apps/{app}/report",
        summary="Online report of an app: reward vs the default action over time, per arm",
        responses=_DOCS,
        openapi_extra=_SECURITY,
        operation_id="app_report",
    )
    async def app_report(
        app: str,
        request: Request,
        resolution: Resolution = "hour",
        hours: float = Query(24.0, gt=0, le=max_hours("hour")),
    ) -> Response:
        if not viewer_apps(request, [app]):
            raise ApiError(403, "forbidden", [f"the key is not valid for app {app!r}"])
        service.runtime(app)  # 404 for an unknown app
        out = await service._call(build, [app], resolution, hours)
        return _json(out[app])

    @api.get(
        "/v1/report",
        summary="Online report of every app the key may see (what the dashboard loads)",
        responses={k: v for k, v in _DOCS.items() if k != 404},
        openapi_extra=_SECURITY,
        operation_id="report",
    )
    async def all_reports(
        request: Request,
        resolution: Resolution = "hour",
        hours: float = Query(24.0, gt=0, le=max_hours("hour")),
    ) -> Response:
        apps = viewer_apps(request, service.app_names())
        started = time.perf_counter()
        out = await service._call(build, apps, resolution, hours)
        took = time.perf_counter() - started
        return _json({"apps": out, "server_seconds": round(took, 4)})

    @api.get("/", include_in_schema=False)
    async def root() -> Response:
        return RedirectResponse("/dashboard")

    @api.get("/dashboard", include_in_schema=False)
    async def dashboard() -> Response:
        return Response(page, media_type="text/html; charset=utf-8")

    @api.get("/dashboard/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in _STATIC:
            raise ApiError(404, "not found", [{"loc": "name", "msg": f"no asset {name!r}"}])
        return Response(_asset(name), media_type=_STATIC[name])
