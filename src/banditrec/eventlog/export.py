"""Joined events ↔ DSJson files: one record per line, readable by `vw --cb_explore_adf --dsjson`
and by banditrec's replay / OPE code.

The time range selects by join time (the joined stream's ids are join timestamps): a
decision joins `wait_seconds` after it was made, or at its first reward with join_on_first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from ..decision.record import LoggedEvent
from .log import EventLog
from .records import stream_id_at

Moment = datetime | str | float | None


def to_unix(moment: Moment) -> float | None:
    """A datetime, an ISO 8601 string (naive means UTC) or unix seconds → unix seconds."""
    if moment is None or isinstance(moment, int | float):
        return moment
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(
                f"{moment!r} is not an ISO 8601 time, e.g. 2024-05-01T12:00:00Z"
            ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def export_joined(
    log: EventLog,
    app: str,
    path: Path | str,
    since: Moment = None,
    until: Moment = None,
    *,
    progress: Callable[[int], Any] | None = None,
) -> int:
    """Write the app's joined events joined in [since, until) to `path`; returns the count.

    `progress(n)` is called with the number of records written since its last call.
    """
    start, end = to_unix(since), to_unix(until)
    if start is not None and end is not None and end <= start:
        raise ValueError(f"until ({until}) must be after since ({since})")
    first = stream_id_at(start) if start is not None else "-"
    # Stream ids are milliseconds; `until` is exclusive.
    last = f"({stream_id_at(end)}" if end is not None else "+"
    n = 0
    pending = 0
    with open(path, "wb") as f:
        for _, record in log.joined.records(app, first, last):
            f.write(orjson.dumps(record) + b"\n")
            n += 1
            pending += 1
            if progress is not None and pending >= 1000:
                progress(pending)
                pending = 0
    if progress is not None and pending:
        progress(pending)
    return n


def read_dsjson_records(path: Path | str) -> Iterator[dict[str, Any]]:
    """The records of a DSJson file as dicts (what `DecisionEngine.learn` takes)."""
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not a JSON line: {exc}") from exc


def read_dsjson(path: Path | str) -> Iterator[LoggedEvent]:
    """The records of a DSJson file, validated."""
    for record in read_dsjson_records(path):
        yield LoggedEvent.model_validate(record)


def count_joined(log: EventLog, app: str) -> int:
    """Length of the app's joined stream (a progress bar's total)."""
    return int(log.joined.stats(app)["joined_stream_len"])
