"""Personalizer's exported logs → banditrec's joined records.

Personalizer wrote one JSON line per event to the customer's storage, in Vowpal Wabbit's
DSJson layout:

- single-slot (`cb_explore_adf`): `_label_cost` (−reward), `_label_probability`,
  `_label_Action` / `_labelIndex` (the chosen action, 1- / 0-based), `a` (1-based actions,
  chosen first), `p` (their probabilities), `c` (context, `_multi`: one object per action),
  `EventId`, `Timestamp`, `o` (the rewards received: `v`, `ActionTaken`), `_skipLearn`
  (a deferred event never activated), `VWState`, `pdrop`;
- multi-slot (`ccb_explore_adf`): `c` also holds `_slots` (one object per slot, `_id` its id),
  and `_outcomes` one entry per slot: `_label_cost`, `_id`, `_a` (0-based actions still
  available to the slot, chosen first), `_p`, `_o`.

Each event becomes the record banditrec's join would have written for it (one per slot),
its features read by the same `namespaced` as live rank requests, so a model warm-started on
the import sees live traffic exactly as it learned it. Personalizer logs no action ids: an
action's `_tag` names it when present, else its position (`"0"`, `"1"`, …, as VW's DSJson
reader does). `write_records` writes a DSJson file (`banditrec evaluate`, `vw --dsjson`);
`load_joined` appends the records to an app's joined stream, where its learner learns them.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from ..decision.features import FeatureSet
from ..decision.record import build_record, set_reward, slot_key
from ..decision.schema import EVENT_ID_PATTERN
from ..eventlog import EventLog
from ..eventlog.keys import AppKeys
from .features import namespaced, slot_name

POLICY = "personalizer"
_RESERVED = ("_multi", "_slots")
_EVENT_ID = re.compile(EVENT_ID_PATTERN)


class PersonalizerLogError(ValueError):
    """A line that is not a Personalizer event; the message names file:line and the field."""


def _seconds(timestamp: Any) -> float:
    if not isinstance(timestamp, str):
        raise ValueError(f"Timestamp {timestamp!r} is not an ISO 8601 string")
    text = timestamp.replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:  # Personalizer writes 7 fractional digits; Python reads up to 6
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[: min(digits, 6)]}{rest[digits:]}"
    return datetime.fromisoformat(text).timestamp()


def _action_ids(multi: list[Any]) -> list[str]:
    tags = [m.get("_tag") if isinstance(m, Mapping) else None for m in multi]
    if all(isinstance(t, str) and t for t in tags) and len(set(tags)) == len(tags):
        return [str(t) for t in tags]
    return [str(i) for i in range(len(multi))]


def _features(context: Mapping[str, Any], multi: list[Any], ids: list[str]) -> FeatureSet:
    return FeatureSet(namespaced([context]), [namespaced([m]) for m in multi], ids)


def _joined(
    app: str,
    event_id: str,
    features: FeatureSet,
    order: list[int],
    probs: list[float],
    cost: float,
    t: float,
    *,
    slot: str | None = None,
    skip_learn: bool = False,
    n_rewards: int = 1,
) -> dict[str, Any]:
    pmf = [0.0] * len(features)
    for i, p in zip(order, probs, strict=True):
        pmf[i] = float(p)
    record = build_record(
        app=app,
        event_id=event_id,
        features=features,
        pmf=pmf,
        order=order,
        model_version=0,
        policy=POLICY,
        mode="online",
        slot=slot,
        deferred=skip_learn,
        now=t,
    )
    joined = set_reward(record, -float(cost), joined_at=t)
    joined["_banditrec"]["n_rewards"] = n_rewards
    return joined


def _single(app: str, line: Mapping[str, Any], event_id: str, t: float) -> list[dict[str, Any]]:
    c = line["c"]
    multi = c.get("_multi")
    if not isinstance(multi, list) or not multi:
        raise ValueError("c._multi must list the offered actions")
    a, p = line["a"], line["p"]
    n = len(multi)
    if sorted(a) != list(range(1, n + 1)) or len(p) != n:
        raise ValueError(f"'a' must be a permutation of 1..{n} with one 'p' per entry")
    if "_label_cost" not in line:
        raise ValueError("no _label_cost: the event was never joined with a reward")
    if a[0] != line.get("_label_Action", a[0]):
        raise ValueError("_label_Action must come first in 'a'")
    ids = _action_ids(multi)
    context = {k: v for k, v in c.items() if k not in _RESERVED}
    outcomes = line.get("o") or []
    return [
        _joined(
            app,
            event_id,
            _features(context, multi, ids),
            [i - 1 for i in a],
            p,
            line["_label_cost"],
            t,
            skip_learn=bool(line.get("_skipLearn")),
            n_rewards=len(outcomes) if isinstance(outcomes, list) else 1,
        )
    ]


def _multi_slot(app: str, line: Mapping[str, Any], event_id: str, t: float) -> list[dict[str, Any]]:
    c = line["c"]
    multi, slots = c.get("_multi"), c.get("_slots")
    if not isinstance(multi, list) or not multi or not isinstance(slots, list):
        raise ValueError("a multi-slot event has c._multi and c._slots")
    ids = _action_ids(multi)
    context = {k: v for k, v in c.items() if k not in _RESERVED}
    records = []
    for k, outcome in enumerate(line["_outcomes"]):
        slot = slots[k] if k < len(slots) and isinstance(slots[k], Mapping) else {}
        name = slot_name(str(outcome.get("_id") or slot.get("_id") or f"slot{k}"))
        available = outcome["_a"]  # 0-based indices into _multi, chosen first
        if not available or len(outcome["_p"]) != len(available):
            raise ValueError(f"_outcomes[{k}]: '_a' and '_p' must have one entry per action")
        offered = sorted(available)
        where = {a: i for i, a in enumerate(offered)}
        features = _features(
            {**context, **{key: v for key, v in slot.items() if key != "_id"}},
            [multi[a] for a in offered],
            [ids[a] for a in offered],
        )
        records.append(
            _joined(
                app,
                event_id,
                features,
                [where[a] for a in available],
                outcome["_p"],
                outcome.get("_label_cost", 0.0),
                t,
                slot=name,
                skip_learn=bool(line.get("_skipLearn")),
                n_rewards=len(outcome.get("_o") or []) or 1,
            )
        )
    return records


def convert(app: str, line: Mapping[str, Any]) -> list[dict[str, Any]]:
    """banditrec's joined records (one per slot) of one Personalizer event."""
    t = _seconds(line["Timestamp"])
    event_id = line.get("EventId")
    if not isinstance(event_id, str) or not event_id:
        outcomes = line.get("_outcomes") or [{}]
        first = (outcomes[0].get("_o") or [{}])[0] if isinstance(outcomes[0], Mapping) else {}
        event_id = first.get("EventId") or hashlib.sha1(orjson.dumps(line)).hexdigest()[:32]
    if not _EVENT_ID.match(event_id):
        raise ValueError(f"EventId {event_id!r} must match {EVENT_ID_PATTERN}")
    if "_outcomes" in line:
        return _multi_slot(app, line, event_id, t)
    return _single(app, line, event_id, t)


def _lines(path: Path) -> Iterator[bytes]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        yield from f


def read_personalizer_log(
    paths: Iterable[Path | str], app: str, skipped: dict[str, int] | None = None
) -> Iterator[dict[str, Any]]:
    """The joined records of Personalizer log files, in file order.

    Events never joined (no `_label_cost`) are left out and counted in `skipped`; a line that
    is not JSON or not an event raises `PersonalizerLogError` naming file:line."""
    for path in map(Path, paths):
        for number, raw in enumerate(_lines(path), 1):
            if not raw.strip():
                continue
            try:
                line = orjson.loads(raw)
                if not isinstance(line, dict):
                    raise ValueError("a line holds one JSON object")
                if "_outcomes" not in line and "_label_cost" not in line:
                    if skipped is not None:
                        skipped["not joined"] = skipped.get("not joined", 0) + 1
                    continue
                yield from convert(app, line)
            except (orjson.JSONDecodeError, ValueError, KeyError, TypeError, IndexError) as exc:
                what = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
                raise PersonalizerLogError(f"{path}:{number}: {what}") from None


def write_records(records: Iterable[dict[str, Any]], path: Path | str) -> int:
    """Write records as DSJson lines; returns how many."""
    n = 0
    with open(path, "wb") as f:
        for record in records:
            f.write(orjson.dumps(record) + b"\n")
            n += 1
    return n


def load_joined(
    log: EventLog, app: str, records: Iterable[dict[str, Any]], batch: int = 500
) -> int:
    """Append records to the app's joined stream as its join would (header + record), so the
    app's learner learns them and `banditrec export` includes them. Returns how many."""
    if log.configs.get(app) is None:
        raise ValueError(
            f"no app {app!r} in Redis (apps: {', '.join(log.configs.list_apps()) or 'none'})"
        )
    key = AppKeys(app).joined
    n = 0
    pipe = log.client.pipeline(transaction=False)
    for record in records:
        meta = record["_banditrec"]
        pending = {k: v for k, v in record.items() if k != "_label_cost"}
        pending["_banditrec"] = {**meta, "reward": None, "joined_at": None}
        head = "|".join(
            [
                meta["event_id"],
                slot_key(meta.get("slot")),
                repr(float(meta["reward"])),
                str(meta.get("n_rewards", 1)),
                "1" if meta.get("activated", True) else "0",
                repr(float(meta["joined_at"])),
            ]
        )
        pipe.xadd(key, {"h": head, "rec": orjson.dumps(pending)})
        n += 1
        if n % batch == 0:
            pipe.execute()
    pipe.execute()
    return n
