"""The log record: one decision in VW's DSJson layout, plus banditrec's fields under one key.

One record, three uses. `build_record` writes it (a plain dict, fast to serialize) and
`set_reward` joins it; `DSJsonRecord` reads any `cb_explore_adf` DSJson record (VW's own
fields) and `LoggedEvent` one of ours (those plus `EventMeta` under `META_KEY`);
`unlearnable` is the one rule for which joined records are learned from and evaluated on,
and `to_interaction` is what a policy learns from one. A joined log file of these records
is read by VW as-is (`vw --cb_explore_adf --dsjson`).

A single-slot decision has no slot: `slot` is None in memory and in the record, and
`SINGLE_SLOT` where a slot must be a string (model keys, Redis fields): `slot_key`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .costs import UNIT, CostScale, logged_reward
from .features import FeatureSet, Interaction

META_KEY = "_banditrec"  # banditrec's fields in a DSJson record: a key VW ignores

SINGLE_SLOT = ""  # a single-slot decision's slot where a string is needed


def slot_key(slot: str | None) -> str:
    """The string key of a slot: `SINGLE_SLOT` for a single-slot decision.

    >>> slot_key(None), slot_key("top")
    ('', 'top')
    """
    return SINGLE_SLOT if slot is None else slot


class EventMeta(BaseModel):
    """banditrec's own fields, kept under one extra DSJson key that VW ignores."""

    model_config = ConfigDict(extra="allow")

    app: str
    event_id: str
    action_ids: list[str]
    slot: str | None = None
    model_version: int = 0
    policy: str = ""
    mode: str = "online"
    reward: float | None = None
    deferred: bool = False
    activated: bool = True
    decided_at: float = 0.0
    joined_at: float | None = None


class DSJsonRecord(BaseModel):
    """A Vowpal Wabbit DSJson `cb_explore_adf` record: `a`/`p` are 1-based, chosen first."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    label_cost: float | None = Field(None, alias="_label_cost")
    label_probability: float = Field(alias="_label_probability", gt=0.0, le=1.0)
    label_action: int = Field(alias="_label_Action", ge=1)
    a: list[int]
    c: dict[str, Any]
    p: list[float]
    event_id: str | None = Field(None, alias="EventId")
    timestamp: str | None = Field(None, alias="Timestamp")
    skip_learn: bool = Field(False, alias="_skipLearn")

    @model_validator(mode="after")
    def _offered(self) -> DSJsonRecord:
        n = len(self.c.get("_multi", []))
        if n == 0:
            raise ValueError("c._multi must list the offered actions")
        if len(self.p) != len(self.a) or sorted(self.a) != list(range(1, n + 1)):
            raise ValueError(
                f"a and p must have one entry per action ({n}), a a permutation of 1..{n}"
            )
        if self.label_action > n:
            raise ValueError(
                f"_label_Action {self.label_action} exceeds the {n} actions in c._multi"
            )
        return self

    def pmf(self) -> list[float]:
        """Probabilities in the order of `c._multi` (the order actions were offered)."""
        out = [0.0] * len(self.a)
        for idx, prob in zip(self.a, self.p, strict=True):
            out[idx - 1] = prob
        return out


class LoggedEvent(DSJsonRecord):
    """One of banditrec's records: VW's fields, the chosen index and `EventMeta`."""

    label_index: int = Field(alias="_labelIndex", ge=0)
    event_id: str = Field(alias="EventId")
    timestamp: str = Field(alias="Timestamp")
    meta: EventMeta = Field(alias=META_KEY)

    @model_validator(mode="after")
    def _consistent(self) -> LoggedEvent:
        if len(self.meta.action_ids) != len(self.a):
            raise ValueError(f"action_ids must have one entry per action ({len(self.a)})")
        if self.label_action != self.label_index + 1 or self.a[0] != self.label_action:
            raise ValueError("_label_Action must be _labelIndex + 1 and come first in 'a'")
        return self

    @property
    def reward(self) -> float | None:
        return None if self.label_cost is None else logged_reward(self.label_cost, self.meta.reward)


NOT_JOINED = "no reward joined"
NEVER_ACTIVATED = "deferred, never activated"


def unlearnable(record: Mapping[str, Any] | DSJsonRecord) -> str | None:
    """Why a record is not learned from (nor evaluated on), or None when it is.

    The one rule, for the learner, the replay readers and slate OPE alike: a record with
    no reward joined (no `_label_cost`) or a deferred event never activated (`_skipLearn`).

    >>> unlearnable({"_label_cost": 0.0}), unlearnable({"_label_cost": 0.0, "_skipLearn": True})
    (None, 'deferred, never activated')
    """
    if isinstance(record, DSJsonRecord):
        cost, skip = record.label_cost, record.skip_learn
    else:
        cost, skip = record.get("_label_cost"), record.get("_skipLearn")
    if cost is None:
        return NOT_JOINED
    if skip:
        return NEVER_ACTIVATED
    return None


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
    if unlearnable(record) is not None:
        return None
    if isinstance(record, LoggedEvent):
        meta = record.meta
        features = FeatureSet.from_dsjson_c(record.c, meta.action_ids)
        index, probability = record.label_index, record.label_probability
        reward = logged_reward(record.label_cost or 0.0, meta.reward)
        return Interaction(features, index, probability, reward, meta.slot)
    raw = record[META_KEY]
    features = FeatureSet.from_dsjson_c(record["c"], raw["action_ids"])
    return Interaction(
        features,
        int(record["_labelIndex"]),
        float(record["_label_probability"]),
        logged_reward(float(record["_label_cost"]), raw.get("reward")),
        raw.get("slot"),
    )
