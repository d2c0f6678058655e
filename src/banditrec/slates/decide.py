"""A slate request → its slate and its log records (one per position); and back.

What `DecisionEngine.decide_slate` / `decide_slate_logged` do, on the engine's served
state: the app's rules under the request's, the positions drawn (choose.py), the answer,
and one DSJson record per position (slot "1" … "k"; see decision/record.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..config import AppConfig
from ..decision.features import FeatureSet
from ..decision.record import META_KEY, build_record
from ..decision.schema import RankedAction
from ..policies import Policy
from ..slate_config import SlateConfig
from .choose import PositionChoice, choose_slate, slate_ranking
from .dsjson import POSITION_KEY
from .schema import SlateDecision, SlatePosition, SlateRequest

_NO_SLATE = SlateConfig()


def slate_features(request: SlateRequest, action_id_feature: bool) -> FeatureSet:
    return FeatureSet.build(
        request.context,
        [(a.id, a.features) for a in request.actions],
        action_id_feature=action_id_feature,
    )


def draw_slate(config: AppConfig, policy: Policy, request: SlateRequest) -> list[PositionChoice]:
    slate = config.slate or _NO_SLATE
    positions = request.positions or min(slate.positions, len(request.actions))
    x = slate_features(request, getattr(config.policy, "action_id_feature", True))
    rules = slate.rules.merged(request.rules)
    return choose_slate(
        config, policy, x, request.event_id, positions, rules, request.exploration, slate
    )


def slate_decision(
    event_id: str, choices: list[PositionChoice], version: int, mode: str
) -> SlateDecision:
    positions = [SlatePosition(c.position, c.action_id, c.probability, c.pinned) for c in choices]
    return SlateDecision(event_id, positions, slate_ranking(choices), version, mode)


def position_records(
    config: AppConfig,
    request: SlateRequest,
    choices: list[PositionChoice],
    *,
    version: int,
    policy_name: str,
    now: float | None,
    serialized_features: bool,
) -> list[dict[str, Any]]:
    records = []
    for c in choices:
        record = build_record(
            app=config.name,
            event_id=request.event_id,
            features=c.features,
            pmf=c.probabilities,
            order=c.order,
            model_version=version,
            policy=policy_name,
            mode=config.mode,
            slot=str(c.position),
            deferred=request.deferred,
            now=now,
            serialized_features=serialized_features,
        )
        meta = record[META_KEY]
        meta[POSITION_KEY] = c.position
        meta["positions"] = len(choices)
        if c.pinned:
            meta["pinned"] = True
        if c.group is not None:
            meta["group"] = c.group
        records.append(record)
    return records


def exposure_shares(records: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Per exposure group, its share of the positions shown in these position records."""
    groups = [r[META_KEY].get("group") for r in records if r[META_KEY].get(POSITION_KEY)]
    if not groups:
        return {}
    counts: dict[str, int] = {}
    for g in groups:
        if g is not None:
            counts[g] = counts.get(g, 0) + 1
    return {g: n / len(groups) for g, n in sorted(counts.items())}


def slate_from_records(records: Sequence[dict[str, Any]]) -> SlateDecision:
    """The slate a set of logged position records was served as (a repeated event id)."""
    meta = records[0][META_KEY]
    positions = []
    for record in sorted(records, key=lambda r: r[META_KEY][POSITION_KEY]):
        m = record[META_KEY]
        chosen = m["action_ids"][record["a"][0] - 1]
        positions.append(
            SlatePosition(m[POSITION_KEY], chosen, float(record["p"][0]), bool(m.get("pinned")))
        )
    ranking = [RankedAction(p.action_id, p.probability) for p in positions]
    drawn = [r for r in records if not r[META_KEY].get("pinned")]
    if drawn:
        last = max(drawn, key=lambda r: r[META_KEY][POSITION_KEY])
        ids = last[META_KEY]["action_ids"]
        shown = {p.action_id for p in positions}
        ranking += [
            RankedAction(ids[a - 1], float(p))
            for a, p in zip(last["a"], last["p"], strict=True)
            if ids[a - 1] not in shown
        ]
    return SlateDecision(
        meta["event_id"], positions, ranking, int(meta["model_version"]), meta["mode"]
    )
