"""Slates in VW's conditional contextual bandit (CCB) DSJson layout.

The event log keeps a slate as one record per position, each a standard DSJson decision
(`build_record`) over the candidates that position could take, with the position's
conditional pmf; so the join, per-position rewards, the learner, export and OPE treat a
slate as they treat a multi-slot decision (slot = position, "1" … "k").
`ccb_line` turns the records of one slate (or of one position) into one CCB DSJson line:

    {"c": {<context>, "_multi": [<candidates>], "_slots": [{"_id": "1", "_inc": [...]}, ...]},
     "_outcomes": [{"_label_cost": −r, "_a": [chosen, ...], "_p": [p, ...]}, ...],
     "EventId": ..., "Timestamp": ..., "_skipLearn": ...}

which VW's `--ccb_explore_adf --dsjson` reads and learns from (`c` must precede
`_outcomes`: VW's reader takes the slots from `c`). `_inc` lists, 0-based, the candidates
the position could take; `_a`/`_p` its pmf, chosen first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from ..decision.record import META_KEY

POSITION_KEY = "position"  # in a per-position record's META_KEY: its 1-based position


def is_position_record(record: Mapping[str, Any]) -> bool:
    """A record of one position of a slate (rather than of a decision or a slot)."""
    return position_of(record) is not None


def position_of(event: object) -> int | None:
    """The position of a slate's record (a dict or a `LoggedEvent`); None for any other."""
    if isinstance(event, Mapping):
        meta = event.get(META_KEY)
        return meta.get(POSITION_KEY) if isinstance(meta, Mapping) else None
    meta = getattr(event, "meta", None)
    return getattr(meta, POSITION_KEY, None) if meta is not None else None


def ccb_line(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One CCB DSJson object from the (joined or pending) records of one slate's positions.

    The candidates are the union of the positions' candidates, in the order they were
    first offered; a record without a reward gives its slot an outcome without a cost.
    """
    if not records:
        raise ValueError("a slate has at least one position")
    first = records[0]
    context = {k: v for k, v in first["c"].items() if k != "_multi"}
    index: dict[str, int] = {}
    multi: list[Any] = []
    slots, outcomes = [], []
    skip = False
    for record in records:
        meta = record[META_KEY]
        ids = meta["action_ids"]
        for action_id, features in zip(ids, record["c"]["_multi"], strict=True):
            if action_id not in index:
                index[action_id] = len(multi)
                multi.append(features)
        local = [index[i] for i in ids]
        slots.append(
            {
                "_id": str(meta.get(POSITION_KEY) or meta.get("slot") or len(slots) + 1),
                "_inc": local,
            }
        )
        outcome: dict[str, Any] = {}
        if record.get("_label_cost") is not None:
            outcome["_label_cost"] = record["_label_cost"]
        outcome["_a"] = [local[a - 1] for a in record["a"]]
        outcome["_p"] = list(record["p"])
        outcomes.append(outcome)
        skip = skip or bool(record.get("_skipLearn"))
    meta = first[META_KEY]
    return {
        "c": {**context, "_multi": multi, "_slots": slots},
        "_outcomes": outcomes,
        "EventId": meta["event_id"],
        "Timestamp": first["Timestamp"],
        "_skipLearn": skip,
        META_KEY: {
            "app": meta["app"],
            "event_id": meta["event_id"],
            "action_ids": list(index),
            "model_version": meta.get("model_version", 0),
            "policy": meta.get("policy", ""),
            "rewards": [r[META_KEY].get("reward") for r in records],
        },
    }


def ccb_lines(records: Sequence[Mapping[str, Any]]) -> list[bytes]:
    """Joined records (as exported) → one CCB DSJson line per slate, in order of first
    appearance; records that are not slate positions are left out."""
    slates: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        if is_position_record(record):
            slates.setdefault(record[META_KEY]["event_id"], []).append(record)
    out = []
    for positions in slates.values():
        positions.sort(key=lambda r: r[META_KEY][POSITION_KEY])
        out.append(orjson.dumps(ccb_line(positions)))
    return out


def ccb_example(context_and_multi: bytes, slots: int) -> bytes:
    """VW's JSON of one CCB example to predict: the decision's features plus `slots` slots."""
    return context_and_multi[:-1] + b',"_slots":[' + b",".join([b"{}"] * slots) + b"]}"
