"""Every error the API answers with has one shape: `{"error": ..., "detail": [...]}`.

Bad input of any kind (JSON that does not parse, wrong types, NaN, unknown app, too
large) becomes a 4xx that says what to fix; only a fault of the service itself is a 5xx.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

log = logging.getLogger("banditrec.serving")


ErrorHook = Callable[[Request, int], None]


class ErrorDetail(BaseModel):
    loc: str = ""
    msg: str


class ErrorBody(BaseModel):
    error: str
    detail: list[ErrorDetail]


class ApiError(Exception):
    """An answer other than success, raised anywhere below a route."""

    def __init__(
        self, status: int, error: str, detail: Sequence[str | dict[str, str]] = ()
    ) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.detail = [d if isinstance(d, dict) else {"loc": "", "msg": d} for d in detail]


def _path(loc: Sequence[Any]) -> str:
    """('actions', 3, 'id') → 'actions[3].id'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def validation_detail(exc: ValidationError, prefix: Sequence[Any] = ()) -> list[dict[str, str]]:
    """pydantic's errors as (field path, message) pairs, without echoing the input."""
    out = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        msg = err["msg"].removeprefix("Value error, ")
        # a check of the request as a whole has no field path: say so instead of ""
        out.append({"loc": _path([*prefix, *err["loc"]]) or "body", "msg": msg})
    return out


def invalid(exc: ValidationError, prefix: Sequence[Any] = ()) -> ApiError:
    return ApiError(422, "invalid request", validation_detail(exc, prefix))


def error_response(
    status: int, error: str, detail: list[dict[str, str]], **headers: str
) -> Response:
    return Response(
        orjson.dumps({"error": error, "detail": detail}),
        status_code=status,
        media_type="application/json",
        headers=headers or None,
    )


def install_error_handlers(api: FastAPI, on_error: ErrorHook | None = None) -> None:
    """Answer every error in the one shape; `on_error(request, status)` counts them."""

    def count(request: Request, status: int) -> None:
        if on_error is not None:
            on_error(request, status)

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        count(request, exc.status)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        return error_response(exc.status, exc.error, exc.detail, **headers)

    async def on_request_validation(request: Request, exc: Exception) -> Response:
        # FastAPI's own parameter validation (path, query, headers).
        assert isinstance(exc, RequestValidationError)
        count(request, 422)
        detail = [
            {"loc": _path(e.get("loc", ())), "msg": str(e.get("msg", "invalid"))}
            for e in exc.errors()
        ]
        return error_response(422, "invalid request", detail)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        count(request, exc.status_code)
        return error_response(exc.status_code, str(exc.detail).lower(), [], **(exc.headers or {}))

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        # Reached only by a fault of the service; the request is not echoed (it may hold keys).
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        count(request, 500)
        return error_response(500, "internal error", [{"loc": "", "msg": type(exc).__name__}])

    api.add_exception_handler(ApiError, on_api_error)
    api.add_exception_handler(RequestValidationError, on_request_validation)
    api.add_exception_handler(StarletteHTTPException, on_http_error)
    api.add_exception_handler(Exception, on_unexpected)
