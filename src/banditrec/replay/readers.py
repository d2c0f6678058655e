"""Reading logs into a `LoggedBandit`: DSJson files (ours and Vowpal Wabbit's) and records.

Our records (exports of the live service, simulator runs) carry banditrec's fields under
"_banditrec" and are read as `record.LoggedEvent`; Vowpal Wabbit's plain DSJson, read as
`record.DSJsonRecord`, has no action ids, so actions are named by their position ("0", "1",
…), and its reward is −cost (`costs.logged_reward`). Records `record.unlearnable` turns
away (not joined yet, deferred and never activated) are left out and counted in
`LoggedBandit.skipped`. Rows keep the file's order, the order the live learner learned
them in."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from pydantic import ValidationError

from ..decision.costs import logged_reward
from ..decision.features import FeatureSet
from ..decision.record import META_KEY, DSJsonRecord, LoggedEvent, unlearnable
from .dataset import LoggedBandit
from .progress import progress_bar


class LogFormatError(ValueError):
    """A log record that cannot be read; the message names the record and what to fix."""


@dataclass
class _Row:
    action: int
    reward: float
    pscore: float
    pmf: list[float]
    event_id: str
    action_ids: list[str]
    c: dict[str, Any]
    slot: str | None
    timestamp: float


@dataclass
class _Collector:
    rows: list[_Row] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def _timestamp(iso: str | None, fallback: float) -> float:
    if not iso:
        return fallback
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return fallback


def _row(record: Mapping[str, Any] | DSJsonRecord, where: str, out: _Collector) -> None:
    try:
        if isinstance(record, DSJsonRecord):
            rec = record
        elif META_KEY in record:
            rec = LoggedEvent.model_validate(record)
        else:
            rec = DSJsonRecord.model_validate(record)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "record"
        raise LogFormatError(
            f"{where}: not a DSJson decision record ({loc}: {first['msg']}); each line must hold "
            "_label_probability, _label_Action, a, p and c with c._multi"
        ) from None
    reason = unlearnable(rec)
    if reason is not None:
        return out.skip(reason)
    pmf = rec.pmf()
    if isinstance(rec, LoggedEvent):
        meta = rec.meta
        row = _Row(
            action=rec.label_index,
            reward=logged_reward(rec.label_cost or 0.0, meta.reward),
            pscore=rec.label_probability,
            pmf=pmf,
            event_id=meta.event_id,
            action_ids=list(meta.action_ids),
            c=rec.c,
            slot=meta.slot,
            timestamp=meta.decided_at or _timestamp(rec.timestamp, 0.0),
        )
    else:  # VW's plain DSJson: actions named by position, reward −cost
        row = _Row(
            action=rec.label_action - 1,
            reward=logged_reward(rec.label_cost or 0.0, None),
            pscore=rec.label_probability,
            pmf=pmf,
            event_id=rec.event_id or where,
            action_ids=[str(k) for k in range(len(pmf))],
            c=rec.c,
            slot=None,
            timestamp=_timestamp(rec.timestamp, 0.0),
        )
    out.rows.append(row)
    return None


def _assemble(collected: _Collector, source: str) -> LoggedBandit:
    rows = collected.rows
    n = len(rows)
    width = max((len(r.pmf) for r in rows), default=1)
    pi_b = np.zeros((n, width))
    for i, r in enumerate(rows):
        pi_b[i, : len(r.pmf)] = r.pmf
    # A logged pmf printed with few digits may not give the chosen action exactly its pscore:
    # the pscore is what the draw used, so it wins.
    action = np.fromiter((r.action for r in rows), dtype=np.intp, count=n)
    pscore = np.fromiter((r.pscore for r in rows), dtype=np.float64, count=n)
    pi_b[np.arange(n), action] = pscore
    slots = [r.slot for r in rows]
    slot = group = None
    slot_names: list[str | None] = [None]
    if any(s is not None for s in slots):
        slot_names = list(dict.fromkeys(slots))
        slot_index = {s: k for k, s in enumerate(slot_names)}
        slot = np.fromiter((slot_index[s] for s in slots), dtype=np.intp, count=n)
        decision_index: dict[str, int] = {}
        group = np.fromiter(
            (decision_index.setdefault(r.event_id, len(decision_index)) for r in rows),
            dtype=np.intp,
            count=n,
        )
    contexts = [r.c for r in rows]
    ids = [r.action_ids for r in rows]
    return LoggedBandit(
        action=action,
        reward=np.fromiter((r.reward for r in rows), dtype=np.float64, count=n),
        pscore=pscore,
        pi_b=pi_b,
        n_offered=np.fromiter((len(r.pmf) for r in rows), dtype=np.intp, count=n),
        event_id=[r.event_id for r in rows],
        action_ids=ids,
        # Built afresh per call, so a featurization cached on a FeatureSet is not kept for the
        # whole log.
        features=lambda i: FeatureSet.from_dsjson_c(contexts[i], ids[i]),
        slot=slot,
        slot_names=slot_names,
        group=group,
        timestamp=np.fromiter((r.timestamp for r in rows), dtype=np.float64, count=n),
        source=source,
        skipped=collected.skipped,
    )


def from_records(
    records: Iterable[Mapping[str, Any] | LoggedEvent], *, source: str = "records"
) -> LoggedBandit:
    """A `LoggedBandit` from DSJson record dicts (or `LoggedEvent`s), e.g. a simulator run's."""
    collected = _Collector()
    for i, record in enumerate(records):
        _row(record, f"record {i}", collected)
    return _assemble(collected, source)


def _lines(path: Path) -> Iterator[bytes]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        yield from io.BufferedReader(fh)  # type: ignore[arg-type]


def read_dsjson(
    path: str | Path, *, limit: int | None = None, progress: bool | None = None
) -> LoggedBandit:
    """Read a DSJson log (one JSON record per line; `.gz` is decompressed)."""
    file = Path(path)
    if not file.exists():
        raise FileNotFoundError(f"no log file at {file}")
    collected = _Collector()
    bar = progress_bar(None, f"reading {file.name}", progress, unit=" lines")
    with bar:
        for number, line in enumerate(_lines(file), start=1):
            if limit is not None and len(collected.rows) >= limit:
                break
            bar.update(1)
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise LogFormatError(f"{file}:{number}: not valid JSON ({exc})") from None
            if not isinstance(record, dict):
                raise LogFormatError(f"{file}:{number}: expected a JSON object per line")
            _row(record, f"{file}:{number}", collected)
    if not collected.rows:
        reasons = (
            ", ".join(f"{k}: {v}" for k, v in collected.skipped.items()) or "the file is empty"
        )
        raise LogFormatError(f"{file}: no joined decisions to evaluate ({reasons})")
    return _assemble(collected, str(file))
