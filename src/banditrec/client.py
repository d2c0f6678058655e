"""Python client of the banditrec HTTP API (httpx), sync (`Client`) and async (`AsyncClient`).

Decisions are retried on connection errors, 5xx and 429 with exponential backoff. That
is safe because the event id is made here, before the first attempt: a retry of a
request the service did log is answered with the decision it logged, not a new one.
Rewards are retried only when the service certainly did not record them (the connection
was never made, 429, 503), since a reward summed twice would skew learning.

    with Client("http://127.0.0.1:8000", app="content", api_key=key) as c:
        d = c.decide({"user": {"age": 31}}, [{"id": "a"}, {"id": "b"}])
        c.reward(d.event_id, 1.0)
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import orjson

from .endpoints import ENDPOINTS, Call, Endpoints, Scope, decision_request

ENV_KEY = "BANDITREC_API_KEY"
ENV_URL = "BANDITREC_URL"
DEFAULT_URL = "http://127.0.0.1:8000"

T = TypeVar("T")
C = TypeVar("C")

_RETRY_STATUS_ALWAYS = frozenset({429, 503})  # the service did not act on the request
_RETRY_STATUS_IDEMPOTENT = frozenset({500, 502, 504})


class ServiceError(Exception):
    """A non-success answer: `status`, `error` and `detail` as the service sent them."""

    def __init__(self, status: int, error: str, detail: list[dict[str, str]]) -> None:
        where = "; ".join(
            f"{d.get('loc')}: {d.get('msg')}" if d.get("loc") else str(d.get("msg")) for d in detail
        )
        super().__init__(f"{status} {error}" + (f" ({where})" if where else ""))
        self.status = status
        self.error = error
        self.detail = detail


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 4
    backoff_s: float = 0.05
    max_backoff_s: float = 2.0

    def delay(self, attempt: int, response: httpx.Response | None) -> float:
        if response is not None:
            retry_after = response.headers.get("retry-after")
            if retry_after is not None:
                try:
                    return min(float(retry_after), self.max_backoff_s)
                except ValueError:
                    pass
        base = min(self.backoff_s * (2**attempt), self.max_backoff_s)
        return base * (0.5 + random.random() / 2)  # jitter: retries of many clients spread out


def _result(response: httpx.Response) -> Any:
    if response.is_success:
        return orjson.loads(response.content)
    try:
        body = orjson.loads(response.content)
        error, detail = str(body.get("error", response.reason_phrase)), list(body.get("detail", []))
    except (orjson.JSONDecodeError, AttributeError):
        error, detail = response.reason_phrase or "error", []
    raise ServiceError(response.status_code, error, detail)


def _retryable(response: httpx.Response, idempotent: bool) -> bool:
    status = response.status_code
    return status in _RETRY_STATUS_ALWAYS or (idempotent and status in _RETRY_STATUS_IDEMPOTENT)


def _retryable_error(exc: httpx.TransportError, idempotent: bool) -> bool:
    # A connection that was never made cannot have delivered the request.
    return idempotent or isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)


class _Attempts:
    """The retry rule of one call, apart from how it is sent (the one rule both clients use)."""

    def __init__(self, retry: RetryPolicy, idempotent: bool) -> None:
        self.retry = retry
        self.idempotent = idempotent
        self.attempt = 0

    def after(self, outcome: httpx.Response | httpx.TransportError) -> httpx.Response | float:
        """The response to answer with, or the seconds to wait before the next attempt;
        a transport error that may not (or no longer) be retried is raised."""
        last = self.attempt == self.retry.attempts - 1
        if isinstance(outcome, httpx.TransportError):
            if last or not _retryable_error(outcome, self.idempotent):
                raise outcome
            wait = self.retry.delay(self.attempt, None)
        elif last or not _retryable(outcome, self.idempotent):
            return outcome
        else:
            wait = self.retry.delay(self.attempt, outcome)
        self.attempt += 1
        return wait


class _Base(Scope):
    """What both clients hold: the service's URL, the app, the key's headers, the retry rule
    and an httpx client (`http`, or one made with `timeout`)."""

    _http_class: Callable[..., Any]

    def __init__(
        self,
        base_url: str | None = None,
        *,
        app: str | None = None,
        api_key: str | None = None,
        timeout: float = 5.0,
        retry: RetryPolicy | None = None,
        http: httpx.Client | httpx.AsyncClient | None = None,
    ) -> None:
        self._http = http or self._http_class(timeout=timeout)
        self.base_url = (base_url or os.environ.get(ENV_URL) or DEFAULT_URL).rstrip("/")
        super().__init__(app)
        key = api_key if api_key is not None else os.environ.get(ENV_KEY)
        self.headers = {"content-type": "application/json"}
        if key:
            self.headers["authorization"] = f"Bearer {key}"
        self.retry = retry or RetryPolicy()


# --- a method per endpoint (banditrec.endpoints), sending its call ----------------------


def _endpoint_methods(
    wrap: Callable[[Callable[..., Call[Any]]], Callable[..., Any]],
) -> Callable[[type[C]], type[C]]:
    """A class decorator giving a client one method per endpoint, `wrap` sending its call."""

    def install(cls: type[C]) -> type[C]:
        for name in ENDPOINTS:
            method = functools.wraps(getattr(Endpoints, name))(wrap(getattr(Endpoints, name)))
            method.__qualname__ = f"{cls.__name__}.{name}"
            setattr(cls, name, method)
        return cls

    return install


def _sync(make: Callable[..., Call[T]]) -> Callable[..., T]:
    def method(self: Client, *args: Any, **kwargs: Any) -> T:
        return self.send(make(self, *args, **kwargs))

    return method


def _async(make: Callable[..., Call[T]]) -> Callable[..., Awaitable[T]]:
    async def method(self: AsyncClient, *args: Any, **kwargs: Any) -> T:
        return await self.send(make(self, *args, **kwargs))

    return method


# --- sync -------------------------------------------------------------------------------


@_endpoint_methods(_sync)
class Client(_Base):
    """The sync client: `decide`, `decide_batch`, `decide_slate`, `reward`, `rewards`,
    `activate`, `apps`, `app_info`, `patch_app`, `rollback`, `report` (see `Endpoints`)."""

    _http: httpx.Client
    _http_class = httpx.Client

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def request(self, method: str, path: str, body: Any = None, *, idempotent: bool = True) -> Any:
        return self.send(Call(method, path, body, idempotent))

    def send(self, call: Call[T]) -> T:
        attempts = _Attempts(self.retry, call.idempotent)
        while isinstance(step := attempts.after(self._attempt(call)), float):
            time.sleep(step)
        return call.read(_result(step))

    def _attempt(self, call: Call[Any]) -> httpx.Response | httpx.TransportError:
        url, content = self.base_url + call.path, call.content
        try:
            return self._http.request(call.method, url, content=content, headers=self.headers)
        except httpx.TransportError as exc:
            return exc


# --- async ------------------------------------------------------------------------------


@_endpoint_methods(_async)
class AsyncClient(_Base):
    """The async client: the methods of `Client`, awaited."""

    _http: httpx.AsyncClient
    _http_class = httpx.AsyncClient

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def request(
        self, method: str, path: str, body: Any = None, *, idempotent: bool = True
    ) -> Any:
        return await self.send(Call(method, path, body, idempotent))

    async def send(self, call: Call[T]) -> T:
        attempts = _Attempts(self.retry, call.idempotent)
        while isinstance(step := attempts.after(await self._attempt(call)), float):
            await asyncio.sleep(step)
        return call.read(_result(step))

    async def _attempt(self, call: Call[Any]) -> httpx.Response | httpx.TransportError:
        url, content = self.base_url + call.path, call.content
        try:
            return await self._http.request(call.method, url, content=content, headers=self.headers)
        except httpx.TransportError as exc:
            return exc


__all__ = ["AsyncClient", "Client", "RetryPolicy", "ServiceError", "decision_request"]
