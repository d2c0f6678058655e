"""`POST /v1/apps/{app}/discovery`: optimization discovery on an app's own joined stream.

Reads the app's most recent joined events (at most `limit`, optionally within a join-time
range), searches VW learning settings around the app's current policy by counterfactual
training (replay/discovery.py) and answers the ranked report with its recommendation. The
app is not changed: applying the recommendation is a PATCH of the app's policy.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..config import AppConfig
from ..eventlog.export import to_unix
from ..eventlog.log import EventLog
from ..eventlog.records import stream_id_at
from ..replay.discovery import discover
from ..replay.readers import LogFormatError, from_records
from .errors import ApiError


class DiscoveryRequest(BaseModel):
    """What to search on; every field is optional."""

    model_config = ConfigDict(extra="forbid")
    limit: int = Field(5000, ge=10, le=200_000, description="Most recent joined events read.")
    since: str | float | None = Field(None, description="Join time from (ISO 8601 or unix s).")
    until: str | float | None = Field(None, description="Join time until, exclusive.")
    estimators: list[Literal["ips", "snips", "dr", "sndr", "dm"]] = Field(
        default_factory=lambda: ["ips", "snips", "dr"], min_length=1, max_length=5
    )
    interval: Literal["normal", "bootstrap", "bernstein"] = "normal"
    alpha: float = Field(0.05, gt=0.0, le=0.5)


def _base_policy(config: AppConfig) -> dict[str, Any] | None:
    policies = config.slot_policies()
    first = next(iter(policies.values()))
    dumped = first.model_dump(mode="json", by_alias=True)
    return dumped if dumped.get("kind") == "vw" else None


def _moment(value: str | float | None, name: str) -> float | None:
    try:
        moment = to_unix(value)
    except ValueError as exc:
        raise ApiError(422, "invalid request", [{"loc": name, "msg": str(exc)}]) from None
    if moment is not None and not (math.isfinite(moment) and 0 <= moment < 1e11):
        msg = "a time: ISO 8601 or unix seconds"
        raise ApiError(422, "invalid request", [{"loc": name, "msg": msg}])
    return moment


def run_discovery(log: EventLog, app: str, config: AppConfig, request: DiscoveryRequest) -> dict:
    """The discovery report (JSON-ready) of the app's joined events; 422 when they cannot
    support one."""
    start, end = _moment(request.since, "since"), _moment(request.until, "until")
    first = stream_id_at(start) if start is not None else "-"
    last = f"({stream_id_at(end)}" if end is not None else "+"
    records = deque((r for _, r in log.joined.records(app, first, last)), maxlen=request.limit)
    if len(records) < 10:
        raise ApiError(
            422,
            "not enough data",
            [f"{len(records)} joined events in the range; discovery needs at least 10"],
        )
    try:
        data = from_records(records, source=f"app {app}")
        report = discover(
            data,
            _base_policy(config),
            methods=request.estimators,
            interval=request.interval,
            alpha=request.alpha,
            progress=False,
        )
    except (LogFormatError, ValueError) as exc:
        raise ApiError(422, "discovery failed", [str(exc)]) from None
    return report.to_dict()
