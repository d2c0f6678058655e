"""Admin routes for privacy and the audit trail; `create_api` installs them.

POST /v1/apps/{app}/erasures          {"subject": "<raw id or pseudonym>"} → the receipt
POST /v1/apps/{app}/pseudonym-keys:rotate                         → {"version": n}
GET  /v1/apps/{app}/audit?limit=100&action=erasure                → {"entries": [...]}
GET  /v1/apps/{app}/feature-importance?rows=5000&method=dr        → see replay/importance.py
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

import orjson
from fastapi import FastAPI, Query, Request
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from starlette.responses import Response

from ..eventlog.keys import AppKeys
from ..eventlog.records import joined_record
from ..privacy.erasure import erase_subject
from ..replay.importance import feature_importance
from ..replay.readers import LogFormatError, from_records
from ..replay.registry import ESTIMATORS
from .audit import AuditAction, actor_of, read_actions, record_action
from .errors import ApiError, invalid
from .openapi import route_docs
from .service import parse_object

JSON = "application/json"


class ErasureRequest(BaseModel):
    subject: str = Field(min_length=1, max_length=1024, description="Raw id or pseudonym.")


class ErasureReceiptBody(BaseModel):
    id: str
    app: str
    key_versions: list[int]
    erased: dict[str, int] = Field(description="Records removed, per store.")
    at: float


class KeyRotation(BaseModel):
    app: str
    version: int


class AuditTrail(BaseModel):
    app: str
    entries: list[dict[str, Any]] = Field(
        description="id, action, actor, at, detail; newest first."
    )


class ImportanceBody(BaseModel):
    method: str
    value: float
    stderr: float
    alpha: float
    n_rows: int
    namespaces: list[dict[str, Any]]


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return TypeAdapter(model).json_schema(mode="serialization")


# The query parameters are the routes' own (FastAPI documents and validates them).
Estimator = Literal[tuple(sorted(ESTIMATORS))]  # type: ignore[valid-type]


def _docs(
    name: str,
    summary: str,
    ok: type[BaseModel],
    errors: tuple[int, ...],
    *,
    body: type[BaseModel] | None = None,
) -> dict[str, Any]:
    """Decorator arguments documenting a route, by the rule of openapi.py's table."""
    spec = {"summary": summary, "ok": _schema(ok), "errors": errors}
    return route_docs(name, spec if body is None else {**spec, "body": _schema(body)})


def _json(data: Any) -> Response:
    return Response(orjson.dumps(data), media_type=JSON)


def _bad(loc: str, msg: str) -> ApiError:
    return ApiError(422, "invalid request", [{"loc": loc, "msg": msg}])


def install_privacy_routes(
    api: FastAPI, service: Any, credential: Callable[[Request], Any]
) -> None:
    def admin(request: Request, app: str) -> str:
        service.runtime(app)  # 404 for an unknown app
        return actor_of(service.keyring.authorize(credential(request), app, "admin"))

    @api.post(
        "/v1/apps/{app}/erasures",
        **_docs(
            "erase_subject",
            "Erase one data subject's records everywhere, with a receipt",
            ErasureReceiptBody,
            (400, 401, 403, 404, 413, 422, 503),
            body=ErasureRequest,
        ),
    )
    async def erasures(app: str, request: Request) -> Response:
        from .app import read_body

        actor = admin(request, app)
        # an admin's small JSON object: bounded all the same
        data = parse_object(await read_body(request, 65_536), "an ErasureRequest object")
        try:
            subject = ErasureRequest.model_validate(data).subject
        except ValidationError as exc:
            raise invalid(exc) from None

        def erase() -> dict[str, Any]:
            receipt = erase_subject(service.log, app, subject, keys=service.pseudonym_keys)
            record_action(service.log.client, app, "erasure", actor, receipt.as_dict())
            return receipt.as_dict()

        return _json(await service._call(erase))

    @api.post(
        "/v1/apps/{app}/pseudonym-keys:rotate",
        **_docs("rotate_key", "Rotate the app's pseudonym key", KeyRotation, (401, 403, 404, 503)),
    )
    async def rotate(app: str, request: Request) -> Response:
        actor = admin(request, app)

        def rotate_key() -> dict[str, Any]:
            version = service.pseudonym_keys.rotate(app)
            record_action(service.log.client, app, "key_rotation", actor, {"version": version})
            service._set_pseudonymizer(app, service.runtime(app).engine)  # live here now
            return {"app": app, "version": version}

        return _json(await service._call(rotate_key))

    @api.get(
        "/v1/apps/{app}/audit",
        **_docs(
            "audit",
            "The app's audit trail, newest first",
            AuditTrail,
            (401, 403, 404, 422, 503),
        ),
    )
    async def audit(
        app: str,
        request: Request,
        limit: Annotated[int, Query(ge=1, le=10_000, description="Entries.")] = 100,
        action: Annotated[AuditAction | None, Query(description="Only this kind.")] = None,
    ) -> Response:
        admin(request, app)
        entries = await service._call(
            lambda: read_actions(service.log.client, app, limit=limit, action=action)
        )
        return _json({"app": app, "entries": entries})

    @api.get(
        "/v1/apps/{app}/feature-importance",
        **_docs(
            "feature_importance",
            "Namespace importance on the app's newest joined events",
            ImportanceBody,
            (401, 403, 404, 422, 503),
        ),
    )
    async def importance(
        app: str,
        request: Request,
        rows: Annotated[int, Query(ge=100, le=50_000, description="Events.")] = 5000,
        method: Annotated[Estimator, Query(description="Estimator.")] = "dr",
    ) -> Response:
        admin(request, app)

        def run() -> dict[str, Any]:
            entries = service.log.client.xrevrange(AppKeys(app).joined, count=rows)
            records = [joined_record(fields) for _, fields in reversed(entries)]
            if len(records) < 100:
                raise _bad("rows", f"{len(records)} joined events; at least 100 are needed")
            data = from_records(records, source=f"app {app}")
            config = service.runtime(app).engine.config
            report = feature_importance(data, config, method=method, progress=False)
            return report.to_dict()

        try:
            return _json(await service._call(run))
        except (ValueError, LogFormatError) as exc:
            raise _bad("body", f"cannot measure importance on these logs: {exc}") from None
