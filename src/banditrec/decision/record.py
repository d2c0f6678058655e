"""The log record: one decision in VW's DSJson layout, plus banditrec's fields under one key.

`build_record` is the write path (a plain dict, fast to serialize); `to_interaction` is the
learning path and accepts the same dict back (or a validated `LoggedEvent`). A joined log
file of these records is read by VW as-is (`vw --cb_explore_adf --dsjson`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson

from .costs import UNIT, CostScale, logged_reward
from .features import FeatureSet, Interaction
from .schema import META_KEY, LoggedEvent


def iso_timestamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_record(
    *,
    app: str,
    event_id: str,
    features: FeatureSet,
    pmf: np.ndarray | Sequence[float],
    order: list[int],
    model_version: int,
    policy: str,
    mode: str,
    slot: str | None = None,
    deferred: bool = False,
    now: float | None = None,
    serialized_features: bool = False,
) -> dict[str, Any]:
    """The pending record of a served decision: no reward (no `_label_cost`) yet.

    With `serialized_features`, "c" is the features' JSON as VW parsed it (an
    `orjson.Fragment`): a record for the log, serialized by orjson with no second pass over
    its bulk, but not one to read "c" back from.
    """
    now = time.time() if now is None else now
    chosen = order[0]
    # Python floats, whatever `pmf` holds (one conversion for a float64 array).
    probs = (
        pmf.tolist()
        if isinstance(pmf, np.ndarray) and pmf.dtype == np.float64
        else [float(v) for v in pmf]
    )
    return {
        "_label_probability": probs[chosen],
        "_label_Action": chosen + 1,
        "_labelIndex": chosen,
        "a": [i + 1 for i in order],
        "c": orjson.Fragment(features.vw_json()) if serialized_features else features.dsjson_c(),
        "p": [probs[i] for i in order],
        "EventId": event_id if slot is None else f"{event_id}/{slot}",
        "Timestamp": iso_timestamp(now),
        "_skipLearn": deferred,
        META_KEY: {
            "app": app,
            "event_id": event_id,
            "action_ids": features.action_ids,
            "slot": slot,
            "model_version": model_version,
            "policy": policy,
            "mode": mode,
            "reward": None,
            "deferred": deferred,
            "activated": not deferred,
            "decided_at": now,
            "joined_at": None,
        },
    }


def set_reward(
    record: dict[str, Any],
    reward: float,
    *,
    joined_at: float | None = None,
    scale: CostScale = UNIT,
) -> dict[str, Any]:
    """The joined record, as the join makes it: the reward under banditrec's key and, as
    `_label_cost`, the cost the policy learns from (`scale`, the policy's reward range: see
    `costs.py`), so VW reading the record learns what the service learned.

    `_label_cost` is put first: VW's DSJson reader only takes the cost when it precedes
    the other label fields, so a record with the cost anywhere else would teach VW nothing.
    """
    meta = {**record[META_KEY], "reward": float(reward)}
    meta["joined_at"] = time.time() if joined_at is None else joined_at
    rest = {k: v for k, v in record.items() if k not in ("_label_cost", META_KEY)}
    rest["_skipLearn"] = bool(meta.get("deferred")) and not meta.get("activated", True)
    return {"_label_cost": scale.cost(float(reward)), **rest, META_KEY: meta}


def to_interaction(record: Mapping[str, Any] | LoggedEvent) -> Interaction | None:
    """What a policy learns from a joined record; None when it must not be learned from."""
    if isinstance(record, LoggedEvent):
        if record.skip_learn or record.label_cost is None:
            return None
        features = FeatureSet.from_dsjson_c(record.c, record.meta.action_ids)
        return Interaction(
            features,
            record.label_index,
            record.label_probability,
            logged_reward(record.label_cost, record.meta.reward),
            record.meta.slot,
        )
    cost = record.get("_label_cost")
    if record.get("_skipLearn") or cost is None:
        return None
    meta = record[META_KEY]
    features = FeatureSet.from_dsjson_c(record["c"], meta["action_ids"])
    return Interaction(
        features,
        int(record["_labelIndex"]),
        float(record["_label_probability"]),
        logged_reward(float(cost), meta.get("reward")),
        meta.get("slot"),
    )
