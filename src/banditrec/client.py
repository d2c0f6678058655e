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
import os
import random
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from .decision.schema import Decision, RankedAction, SlotDecision, new_event_id
from .slates.schema import SlateDecision, slate_from_json, slate_request_body

ENV_KEY = "BANDITREC_API_KEY"
ENV_URL = "BANDITREC_URL"
DEFAULT_URL = "http://127.0.0.1:8000"

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


class _Base:
    def __init__(
        self, base_url: str | None, app: str | None, api_key: str | None, retry: RetryPolicy | None
    ) -> None:
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


# --- sync -------------------------------------------------------------------------------


class Client(_Base):
    def __init__(
        self,
        base_url: str | None = None,
        *,
        app: str | None = None,
        api_key: str | None = None,
        timeout: float = 5.0,
        retry: RetryPolicy | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        super().__init__(base_url, app, api_key, retry)
        self._http = http or httpx.Client(timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def request(self, method: str, path: str, body: Any = None, *, idempotent: bool = True) -> Any:
        content = None if body is None else orjson.dumps(body)
        url = self.base_url + path
        for attempt in range(self.retry.attempts):
            last = attempt == self.retry.attempts - 1
            try:
                response = self._http.request(method, url, content=content, headers=self.headers)
            except httpx.TransportError as exc:
                if last or not _retryable_error(exc, idempotent):
                    raise
                time.sleep(self.retry.delay(attempt, None))
                continue
            if last or not _retryable(response, idempotent):
                return _result(response)
            time.sleep(self.retry.delay(attempt, response))
        raise AssertionError("unreachable")

    def decide(
        self,
        context: Mapping[str, Any] | None = None,
        actions: Sequence[Any] | None = None,
        *,
        app: str | None = None,
        **options: Any,
    ) -> Decision:
        body = decision_request(context, actions, **options)
        return decision_from_json(
            self.request("POST", f"/v1/apps/{self._app(app)}/decisions", body)
        )

    def decide_batch(
        self, requests: Iterable[Mapping[str, Any]], *, app: str | None = None
    ) -> list[Decision]:
        body = {"requests": [_with_event_id(r) for r in requests]}
        out = self.request("POST", f"/v1/apps/{self._app(app)}/decisions:batch", body)
        return [decision_from_json(d) for d in out["decisions"]]

    def decide_slate(
        self,
        context: Mapping[str, Any] | None,
        actions: Sequence[Any],
        *,
        app: str | None = None,
        **options: Any,
    ) -> SlateDecision:
        """A slate: `positions`, `rules`, `event_id`, `exploration`, `deferred` as options."""
        body = slate_request_body(dict(context or {}), list(actions), **options)
        return slate_from_json(self.request("POST", f"/v1/apps/{self._app(app)}/slates", body))

    def reward(
        self, event_id: str, value: float, *, slot: str | None = None, app: str | None = None
    ) -> str:
        return self.rewards([(event_id, value, slot)], app=app)[0]

    def rewards(self, rewards: Iterable[Any], *, app: str | None = None) -> list[str]:
        """Rewards as dicts, `Reward`s or (event_id, value[, slot]) tuples; their outcomes."""
        out = self.request(
            "POST", f"/v1/apps/{self._app(app)}/rewards", _reward_body(rewards), idempotent=False
        )
        return [o["outcome"] for o in out["outcomes"]]

    def activate(self, event_id: str, *, app: str | None = None) -> bool:
        path = f"/v1/apps/{self._app(app)}/events/{event_id}/activate"
        return bool(self.request("POST", path)["activated"])

    def apps(self) -> list[str]:
        return list(self.request("GET", "/v1/apps")["apps"])

    def app_info(self, app: str | None = None) -> dict[str, Any]:
        return self.request("GET", f"/v1/apps/{self._app(app)}")

    def patch_app(self, patch: Mapping[str, Any], *, app: str | None = None) -> dict[str, Any]:
        return self.request("PATCH", f"/v1/apps/{self._app(app)}", dict(patch), idempotent=False)

    def rollback(self, version: int, *, app: str | None = None) -> dict[str, Any]:
        return self.patch_app({"rollback_to": version}, app=app)

    def report(
        self, *, app: str | None = None, resolution: str = "hour", hours: float = 24.0
    ) -> dict[str, Any]:
        """The app's online report: per arm, and its experiment's state (docs/reporting.md)."""
        return self.request("GET", _report_path(self._app(app), resolution, hours))


# --- async ------------------------------------------------------------------------------


class AsyncClient(_Base):
    def __init__(
        self,
        base_url: str | None = None,
        *,
        app: str | None = None,
        api_key: str | None = None,
        timeout: float = 5.0,
        retry: RetryPolicy | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(base_url, app, api_key, retry)
        self._http = http or httpx.AsyncClient(timeout=timeout)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def request(
        self, method: str, path: str, body: Any = None, *, idempotent: bool = True
    ) -> Any:
        content = None if body is None else orjson.dumps(body)
        url = self.base_url + path
        for attempt in range(self.retry.attempts):
            last = attempt == self.retry.attempts - 1
            try:
                response = await self._http.request(
                    method, url, content=content, headers=self.headers
                )
            except httpx.TransportError as exc:
                if last or not _retryable_error(exc, idempotent):
                    raise
                await asyncio.sleep(self.retry.delay(attempt, None))
                continue
            if last or not _retryable(response, idempotent):
                return _result(response)
            await asyncio.sleep(self.retry.delay(attempt, response))
        raise AssertionError("unreachable")

    async def decide(
        self,
        context: Mapping[str, Any] | None = None,
        actions: Sequence[Any] | None = None,
        *,
        app: str | None = None,
        **options: Any,
    ) -> Decision:
        body = decision_request(context, actions, **options)
        out = await self.request("POST", f"/v1/apps/{self._app(app)}/decisions", body)
        return decision_from_json(out)

    async def decide_batch(
        self, requests: Iterable[Mapping[str, Any]], *, app: str | None = None
    ) -> list[Decision]:
        body = {"requests": [_with_event_id(r) for r in requests]}
        out = await self.request("POST", f"/v1/apps/{self._app(app)}/decisions:batch", body)
        return [decision_from_json(d) for d in out["decisions"]]

    async def decide_slate(
        self,
        context: Mapping[str, Any] | None,
        actions: Sequence[Any],
        *,
        app: str | None = None,
        **options: Any,
    ) -> SlateDecision:
        body = slate_request_body(dict(context or {}), list(actions), **options)
        return slate_from_json(
            await self.request("POST", f"/v1/apps/{self._app(app)}/slates", body)
        )

    async def reward(
        self, event_id: str, value: float, *, slot: str | None = None, app: str | None = None
    ) -> str:
        return (await self.rewards([(event_id, value, slot)], app=app))[0]

    async def rewards(self, rewards: Iterable[Any], *, app: str | None = None) -> list[str]:
        path = f"/v1/apps/{self._app(app)}/rewards"
        out = await self.request("POST", path, _reward_body(rewards), idempotent=False)
        return [o["outcome"] for o in out["outcomes"]]

    async def activate(self, event_id: str, *, app: str | None = None) -> bool:
        path = f"/v1/apps/{self._app(app)}/events/{event_id}/activate"
        return bool((await self.request("POST", path))["activated"])

    async def apps(self) -> list[str]:
        return list((await self.request("GET", "/v1/apps"))["apps"])

    async def app_info(self, app: str | None = None) -> dict[str, Any]:
        return await self.request("GET", f"/v1/apps/{self._app(app)}")

    async def patch_app(
        self, patch: Mapping[str, Any], *, app: str | None = None
    ) -> dict[str, Any]:
        return await self.request(
            "PATCH", f"/v1/apps/{self._app(app)}", dict(patch), idempotent=False
        )

    async def rollback(self, version: int, *, app: str | None = None) -> dict[str, Any]:
        return await self.patch_app({"rollback_to": version}, app=app)

    async def report(
        self, *, app: str | None = None, resolution: str = "hour", hours: float = 24.0
    ) -> dict[str, Any]:
        """The app's online report: per arm, and its experiment's state (docs/reporting.md)."""
        return await self.request("GET", _report_path(self._app(app), resolution, hours))


def _report_path(app: str, resolution: str, hours: float) -> str:
    return f"/v1/apps/{app}/report?resolution={resolution}&hours={hours:g}"


__all__ = ["AsyncClient", "Client", "RetryPolicy", "ServiceError", "decision_request"]
