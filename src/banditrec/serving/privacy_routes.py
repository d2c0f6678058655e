"""Admin routes for privacy and the audit trail; `create_api` installs them.

POST /v1/apps/{app}/erasures          {"subject": "<raw id or pseudonym>"} → the receipt
POST /v1/apps/{app}/pseudonym-keys:rotate                         → {"version": n}
GET  /v1/apps/{app}/audit?limit=100&action=erasure                → {"entries": [...]}
GET  /v1/apps/{app}/feature-importance?rows=5000&method=dr        → see replay/importance.py
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI, Request
from pydantic import BaseModel, Field, TypeAdapter
from starlette.responses import Response

from ..eventlog.keys import AppKeys
from ..eventlog.records import joined_record
from ..privacy.erasure import erase_subject
from ..replay.importance import feature_importance
from ..replay.readers import LogFormatError, from_records
from ..replay.registry import ESTIMATORS
from .audit import ACTIONS, actor_of, read_actions, record_action
from .errors import ApiError
from .openapi import _AUTH, _ERRORS, _content, _ref

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


@dataclass(frozen=True, slots=True)
class IntQuery:
    """An integer query parameter in [low, high]: declared once, documented and read from it."""

    name: str
    default: int
    low: int
    high: int
    what: str

    def doc(self) -> dict[str, Any]:
        return _query(
            self.name, {"type": "integer", "minimum": self.low, "maximum": self.high}, self.what
        )

    def read(self, request: Request) -> int:
        """The value sent, or the default; 422 naming the parameter when it is not in range."""
        try:
            value = int(request.query_params.get(self.name, str(self.default)))
        except ValueError:
            value = self.low - 1
        if not self.low <= value <= self.high:
            raise _bad(self.name, f"an integer between {self.low} and {self.high}")
        return value


@dataclass(frozen=True, slots=True)
class ChoiceQuery:
    """A query parameter taking one of `choices`: declared once, documented and read from it."""

    name: str
    choices: list[str]
    default: str | None
    what: str

    def doc(self) -> dict[str, Any]:
        return _query(self.name, {"type": "string", "enum": self.choices}, self.what)

    def read(self, request: Request) -> str | None:
        """The value sent, or the default; 422 naming the parameter when it is not a choice."""
        value = request.query_params.get(self.name, self.default)
        if value is not None and value not in self.choices:
            raise _bad(self.name, f"one of {self.choices}")
        return value


def _query(name: str, schema: dict[str, Any], what: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": what}


AUDIT_LIMIT = IntQuery("limit", 100, 1, 10_000, "Entries.")
AUDIT_ACTION = ChoiceQuery("action", list(ACTIONS), None, "Only this kind.")
IMPORTANCE_ROWS = IntQuery("rows", 5000, 100, 50_000, "Events.")
IMPORTANCE_METHOD = ChoiceQuery("method", sorted(ESTIMATORS), "dr", "Estimator.")


def _docs(
    name: str,
    summary: str,
    ok: type[BaseModel],
    errors: tuple[int, ...],
    *,
    body: type[BaseModel] | None = None,
    query: list[IntQuery | ChoiceQuery] | None = None,
) -> dict[str, Any]:
    """Decorator arguments documenting a route as openapi.py documents the others."""
    responses: dict[int | str, Any] = {
        200: {"description": "Success", "content": _content(_schema(ok))}
    }
    # behind a key, so also 400 (two headers carrying different keys) and 401, as openapi.py
    for status in sorted({*errors, 400, 401}):
        responses[status] = {"description": _ERRORS[status], "content": _content(_ref("ErrorBody"))}
    extra: dict[str, Any] = {"security": _AUTH}
    if body is not None:
        extra["requestBody"] = {"required": True, "content": _content(_schema(body))}
    if query:
        extra["parameters"] = [q.doc() for q in query]
    return {
        "summary": summary,
        "responses": responses,
        "openapi_extra": extra,
        "operation_id": name,
    }


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
        actor = admin(request, app)
        body = await request.body()  # an admin's small JSON object: bounded all the same
        if len(body) > 65_536:
            raise ApiError(413, "request too large", [f"{len(body)} bytes; the limit is 65536"])
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ApiError(400, "malformed JSON", [str(exc)]) from None
        subject = data.get("subject") if isinstance(data, dict) else None
        if not isinstance(subject, str) or not subject or len(subject) > 1024:
            raise _bad("subject", "send the subject's id as a non-empty string")

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
            query=[AUDIT_LIMIT, AUDIT_ACTION],
        ),
    )
    async def audit(app: str, request: Request) -> Response:
        admin(request, app)
        limit, action = AUDIT_LIMIT.read(request), AUDIT_ACTION.read(request)
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
            query=[IMPORTANCE_ROWS, IMPORTANCE_METHOD],
        ),
    )
    async def importance(app: str, request: Request) -> Response:
        admin(request, app)
        rows, method = IMPORTANCE_ROWS.read(request), IMPORTANCE_METHOD.read(request)

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
