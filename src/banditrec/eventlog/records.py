"""Joined stream entries ↔ DSJson records."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import orjson

from ..decision.costs import UNIT, CostScale
from ..decision.record import META_KEY, set_reward


class JoinedHeader(NamedTuple):
    """The `h` field of a joined stream entry: "event_id|slot|reward|n_rewards|activated|joined_at"."""

    event_id: bytes
    slot: bytes  # `slot_key(slot)` encoded: SINGLE_SLOT for a single-slot app
    reward: float
    n_rewards: int
    activated: bool
    joined_at: float


def joined_header(fields: dict[bytes, bytes]) -> JoinedHeader:
    # An event id has no "|" (EVENT_ID_PATTERN) and the last four are numbers: whatever is
    # between is the slot, separators and all.
    event_id, rest = fields[b"h"].split(b"|", 1)
    slot, reward, n_rewards, activated, joined_at = rest.rsplit(b"|", 4)
    return JoinedHeader(
        event_id, slot, float(reward), int(n_rewards), activated == b"1", float(joined_at)
    )


def joined_record(
    fields: dict[bytes, bytes], scales: Mapping[str | None, CostScale] | None = None
) -> dict[str, Any]:
    """The learnable DSJson record of one joined stream entry (the core's `set_reward` applied,
    with the slot's reward → cost map from `scales`, `AppConfig.cost_scales()`; [0, 1] if absent).

    An entry is `h` (see JoinedHeader) and `rec` = the record as logged.
    """
    head = joined_header(fields)
    record = orjson.loads(fields[b"rec"])
    meta = record[META_KEY]
    meta["activated"] = head.activated
    meta["n_rewards"] = head.n_rewards
    scale = (scales or {}).get(meta.get("slot"), UNIT)
    return set_reward(record, head.reward, joined_at=head.joined_at, scale=scale)


def stream_id_tuple(stream_id: str | bytes) -> tuple[int, int]:
    text = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def stream_id_at(t: float) -> str:
    """The smallest stream id at or after unix time `t`."""
    return f"{max(int(t * 1000), 0)}-0"
