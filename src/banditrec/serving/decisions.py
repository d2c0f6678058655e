"""Decisions as the API returns them: fresh from the engine, or rebuilt from logged records.

A repeated event id is answered from what was logged the first time, so a client retry
gets the same action and probability even if the model changed in between.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..decision.record import META_KEY
from ..decision.schema import Decision, RankedAction, SlotDecision


def _ranking(record: dict[str, Any]) -> list[RankedAction]:
    ids = record[META_KEY]["action_ids"]
    return [
        RankedAction(ids[a - 1], float(p)) for a, p in zip(record["a"], record["p"], strict=True)
    ]


def decision_from_records(records: Sequence[dict[str, Any]]) -> Decision:
    """The decision a set of logged records (one per slot) was served as."""
    meta = records[0][META_KEY]
    event_id, version, mode = meta["event_id"], int(meta["model_version"]), meta["mode"]
    arm = (meta.get("arm"), meta.get("arm_probability"))  # (None, None) outside experiments
    if len(records) == 1 and meta.get("slot") is None:
        ranking = _ranking(records[0])
        top = ranking[0]
        return Decision(event_id, top.id, top.probability, ranking, version, mode, None, *arm)
    slots = []
    for record in records:
        ranking = _ranking(record)
        slot = record[META_KEY]["slot"]
        slots.append(SlotDecision(slot, ranking[0].id, ranking[0].probability, ranking))
    return Decision(event_id, None, None, [], version, mode, slots, *arm)


def top_probability(decision: Decision) -> float:
    """The largest probability among the offered actions (averaged over slots)."""
    if decision.slots is None:
        return max(r.probability for r in decision.ranking)
    tops = [max(r.probability for r in s.ranking) for s in decision.slots]
    return sum(tops) / len(tops)
