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
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx
import orjson

from .decision.schema import Decision, RankedAction, SlotDecision, new_event_id
from .slates.schema import SlateDecision, slate_from_json, slate_request_body

ENV_KEY = "BANDITREC_API_KEY"
ENV_URL = "BANDITREC_URL"
DEFAULT_URL = "http://127.0.0.1:8000"

T = TypeVar("T")
U = TypeVar("U")
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


# --- requests and answers (shared by both clients) ---------------------------------------


def _ranking(items: Sequence[Mapping[str, Any]]) -> list[RankedAction]:
    return [RankedAction(r["id"], float(r["probability"])) for r in items]


def decision_from_json(d: Mapping[str, Any]) -> Decision:
    slots = d.get("slots")
    return Decision(
        event_id=d["event_id"],
        action_id=d.get("action_id"),
        probability=d.get("probability"),
        ranking=_ranking(d.get("ranking") or []),
        model_version=int(d.get("model_version", 0)),
        mode=d.get("mode", "online"),
        slots=None
        if slots is None
        else [
            SlotDecision(s["slot"], s["action_id"], float(s["probability"]), _ranking(s["ranking"]))
            for s in slots
        ],
        arm=d.get("arm"),
        arm_probability=d.get("arm_probability"),
    )


def decision_request(
    context: Mapping[str, Any] | None = None,
    actions: Sequence[Mapping[str, Any] | str] | None = None,
    *,
    slots: Sequence[Mapping[str, Any]] | None = None,
    event_id: str | None = None,
    exploration: Mapping[str, float] | None = None,
    deferred: bool = False,
    unit_id: str | None = None,
) -> dict[str, Any]:
    """A decision request body, with its event id fixed now (so retries are idempotent).
    An action may be given as a bare id; `unit_id` is the unit (a user) an app's
    experiment assigns to an arm."""
    body: dict[str, Any] = {"event_id": event_id or new_event_id(), "context": dict(context or {})}
    if actions is not None:
        body["actions"] = [{"id": a} if isinstance(a, str) else dict(a) for a in actions]
    if slots is not None:
        body["slots"] = [dict(s) for s in slots]
    if exploration is not None:
        body["exploration"] = dict(exploration)
    if deferred:
        body["deferred"] = True
    if unit_id is not None:
        body["unit_id"] = unit_id
    return body


def _with_event_id(request: Mapping[str, Any]) -> dict[str, Any]:
    body = dict(request)
    body.setdefault("event_id", new_event_id())
    return body


def _reward_body(rewards: Iterable[Any]) -> dict[str, Any]:
    out = []
    for r in rewards:
        if isinstance(r, Mapping):
            out.append(dict(r))
        elif isinstance(r, tuple):
            out.append({"event_id": r[0], "value": r[1], **({"slot": r[2]} if len(r) > 2 else {})})
        else:  # a banditrec.decision.schema.Reward
            out.append(r.model_dump(exclude_none=True))
    return {"rewards": out}


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


@dataclass(frozen=True, slots=True)
class _Call(Generic[T]):
    """One request of the API and how its answer is read: what both clients send."""

    method: str
    path: str
    body: Any = None
    idempotent: bool = True
    read: Callable[[Any], T] = lambda out: out

    @property
    def content(self) -> bytes | None:
        return None if self.body is None else orjson.dumps(self.body)

    def then(self, read: Callable[[T], U]) -> _Call[U]:
        first = self.read
        return _Call(
            self.method, self.path, self.body, self.idempotent, lambda out: read(first(out))
        )


class _Base:
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
        self.app = app
        key = api_key if api_key is not None else os.environ.get(ENV_KEY)
        self.headers = {"content-type": "application/json"}
        if key:
            self.headers["authorization"] = f"Bearer {key}"
        self.retry = retry or RetryPolicy()

    def _app(self, app: str | None) -> str:
        name = app or self.app
        if not name:
            raise ValueError("name the app: Client(app=...) or app=... on the call")
        return name


# --- the endpoints, once: each makes its call; `Client` and `AsyncClient` send it ---------


class _Endpoints:
    """The API's endpoints as `_Call`s; each client gets a method per endpoint that sends it
    (`Client.decide` returns a `Decision`, `AsyncClient.decide` an awaitable of one)."""

    def decide(
        c: _Base,
        context: Mapping[str, Any] | None = None,
        actions: Sequence[Any] | None = None,
        *,
        app: str | None = None,
        **options: Any,
    ) -> _Call[Decision]:
        """One decision; `options` as `decision_request` takes them."""
        body = decision_request(context, actions, **options)
        return _Call("POST", f"/v1/apps/{c._app(app)}/decisions", body, read=decision_from_json)

    def decide_batch(
        c: _Base, requests: Iterable[Mapping[str, Any]], *, app: str | None = None
    ) -> _Call[list[Decision]]:
        """Many decisions; each request body gets its event id now."""
        body = {"requests": [_with_event_id(r) for r in requests]}
        return _Call(
            "POST",
            f"/v1/apps/{c._app(app)}/decisions:batch",
            body,
            read=lambda out: [decision_from_json(d) for d in out["decisions"]],
        )

    def decide_slate(
        c: _Base,
        context: Mapping[str, Any] | None,
        actions: Sequence[Any],
        *,
        app: str | None = None,
        **options: Any,
    ) -> _Call[SlateDecision]:
        """A slate: `positions`, `rules`, `event_id`, `exploration`, `deferred` as options."""
        body = slate_request_body(dict(context or {}), list(actions), **options)
        return _Call("POST", f"/v1/apps/{c._app(app)}/slates", body, read=slate_from_json)

    def rewards(c: _Base, rewards: Iterable[Any], *, app: str | None = None) -> _Call[list[str]]:
        """Rewards as dicts, `Reward`s or (event_id, value[, slot]) tuples; their outcomes."""
        return _Call(
            "POST",
            f"/v1/apps/{c._app(app)}/rewards",
            _reward_body(rewards),
            idempotent=False,
            read=lambda out: [o["outcome"] for o in out["outcomes"]],
        )

    def reward(
        c: _Base, event_id: str, value: float, *, slot: str | None = None, app: str | None = None
    ) -> _Call[str]:
        """One reward; its outcome."""
        return _Endpoints.rewards(c, [(event_id, value, slot)], app=app).then(lambda o: o[0])

    def activate(c: _Base, event_id: str, *, app: str | None = None) -> _Call[bool]:
        """Activate a deferred decision; whether it was activated now."""
        path = f"/v1/apps/{c._app(app)}/events/{event_id}/activate"
        return _Call("POST", path, read=lambda out: bool(out["activated"]))

    def apps(c: _Base) -> _Call[list[str]]:
        """The apps the key can use."""
        return _Call("GET", "/v1/apps", read=lambda out: list(out["apps"]))

    def app_info(c: _Base, app: str | None = None) -> _Call[dict[str, Any]]:
        """The app's config, models, counters and online reward."""
        return _Call("GET", f"/v1/apps/{c._app(app)}")

    def patch_app(
        c: _Base, patch: Mapping[str, Any], *, app: str | None = None
    ) -> _Call[dict[str, Any]]:
        """A JSON merge patch of the app's config; the app's info after it."""
        return _Call("PATCH", f"/v1/apps/{c._app(app)}", dict(patch), idempotent=False)

    def rollback(c: _Base, version: int, *, app: str | None = None) -> _Call[dict[str, Any]]:
        """Serve an earlier model version again."""
        return _Endpoints.patch_app(c, {"rollback_to": version}, app=app)

    def report(
        c: _Base, *, app: str | None = None, resolution: str = "hour", hours: float = 24.0
    ) -> _Call[dict[str, Any]]:
        """The app's online report: per arm, and its experiment's state (docs/reporting.md)."""
        return _Call("GET", _report_path(c._app(app), resolution, hours))


_ENDPOINTS = [name for name in vars(_Endpoints) if not name.startswith("_")]


def _endpoint_methods(
    wrap: Callable[[Callable[..., _Call[Any]]], Callable[..., Any]],
) -> Callable[[type[C]], type[C]]:
    """A class decorator giving a client one method per endpoint, `wrap` sending its call."""

    def install(cls: type[C]) -> type[C]:
        for name in _ENDPOINTS:
            method = functools.wraps(getattr(_Endpoints, name))(wrap(getattr(_Endpoints, name)))
            method.__qualname__ = f"{cls.__name__}.{name}"
            setattr(cls, name, method)
        return cls

    return install


def _sync(make: Callable[..., _Call[T]]) -> Callable[..., T]:
    def method(self: Client, *args: Any, **kwargs: Any) -> T:
        return self.send(make(self, *args, **kwargs))

    return method


def _async(make: Callable[..., _Call[T]]) -> Callable[..., Awaitable[T]]:
    async def method(self: AsyncClient, *args: Any, **kwargs: Any) -> T:
        return await self.send(make(self, *args, **kwargs))

    return method


# --- sync -------------------------------------------------------------------------------


@_endpoint_methods(_sync)
class Client(_Base):
    """The sync client: `decide`, `decide_batch`, `decide_slate`, `reward`, `rewards`,
    `activate`, `apps`, `app_info`, `patch_app`, `rollback`, `report` (see `_Endpoints`)."""

    _http: httpx.Client
    _http_class = httpx.Client

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def request(self, method: str, path: str, body: Any = None, *, idempotent: bool = True) -> Any:
        return self.send(_Call(method, path, body, idempotent))

    def send(self, call: _Call[T]) -> T:
        attempts = _Attempts(self.retry, call.idempotent)
        while isinstance(step := attempts.after(self._attempt(call)), float):
            time.sleep(step)
        return call.read(_result(step))

    def _attempt(self, call: _Call[Any]) -> httpx.Response | httpx.TransportError:
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
        return await self.send(_Call(method, path, body, idempotent))

    async def send(self, call: _Call[T]) -> T:
        attempts = _Attempts(self.retry, call.idempotent)
        while isinstance(step := attempts.after(await self._attempt(call)), float):
            await asyncio.sleep(step)
        return call.read(_result(step))

    async def _attempt(self, call: _Call[Any]) -> httpx.Response | httpx.TransportError:
        url, content = self.base_url + call.path, call.content
        try:
            return await self._http.request(call.method, url, content=content, headers=self.headers)
        except httpx.TransportError as exc:
            return exc


def _report_path(app: str, resolution: str, hours: float) -> str:
    return f"/v1/apps/{app}/report?resolution={resolution}&hours={hours:g}"


__all__ = ["AsyncClient", "Client", "RetryPolicy", "ServiceError", "decision_request"]
