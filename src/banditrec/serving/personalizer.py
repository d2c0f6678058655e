"""Azure Personalizer's calls, done by banditrec (see docs/personalizer.md).

Each call becomes the native one: a rank is a decision (logged, joined and learned like any
other), `deferActivation` is `deferred`, a reward is a reward, the service configuration and
the learning settings are a PATCH of the app's config. Here are Personalizer's request
bodies and `PersonalizerApi`, which turns them into calls of the decision service; the
paths, keys header and error shape are in serving/personalizer_routes.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..config import AppConfig
from ..decision.schema import Decision, SlotDecision
from ..personalizer.features import namespaced, slot_name
from ..personalizer.settings import (
    DEFAULT_LEARNING_SETTINGS,
    LearningSettingsError,
    config_patch,
    learning_settings,
    parse_learning_settings,
    service_configuration,
)
from ..policies import make_policy
from .errors import ApiError, validation_detail
from .service import DecisionService, parse_json, parse_object


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class RankableAction(_Model):
    id: str = Field(min_length=1, max_length=256)
    features: list[Any] | None = None  # objects; checked by `_features` (no copy here)


class RankRequest(_Model):
    contextFeatures: list[Any] | None = None
    actions: list[RankableAction] = Field(min_length=1)
    excludedActions: list[str] | None = None
    eventId: str | None = Field(None, max_length=256)
    deferActivation: bool | None = None


class SlotRequest(_Model):
    id: str = Field(min_length=1, max_length=256)
    features: list[Any] | None = None  # objects; checked by `_features` (no copy here)
    excludedActions: list[str] | None = None
    baselineAction: str | None = None


class MultiSlotRankRequest(RankRequest):
    slots: list[SlotRequest] = Field(min_length=1)


class RewardRequest(_Model):
    value: float


class SlotReward(_Model):
    slotId: str = Field(min_length=1, max_length=256)
    value: float


class MultiSlotRewardRequest(_Model):
    reward: list[SlotReward] = Field(min_length=1)


class PolicyContract(_Model):
    name: str = Field(max_length=256)
    arguments: str = Field(max_length=1024)


def _validated(model: type[BaseModel], data: Any) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(400, "invalid request", validation_detail(exc)) from None


def _features(objects: list[Any] | None, where: str, flat: bool = False) -> dict[str, Any]:
    try:
        return namespaced(objects, flat=flat)
    except ValueError as exc:
        raise ApiError(400, "invalid request", [{"loc": where, "msg": str(exc)}]) from None


def _action(action: RankableAction, where: str, flat: bool = False) -> dict[str, Any]:
    return {"id": action.id, "features": _features(action.features, f"{where}.features", flat)}


def _ranking(decision: Decision, excluded: list[str]) -> list[dict[str, Any]]:
    ranking = [{"id": r.id, "probability": r.probability} for r in decision.ranking]
    return ranking + [{"id": a, "probability": 0.0} for a in excluded]


class PersonalizerApi:
    """The routes' work, apart from HTTP: Personalizer's shapes ↔ the decision service."""

    def __init__(self, service: DecisionService) -> None:
        self.service = service

    def _event_id(self, event_id: str | None) -> str:
        return event_id if event_id is not None else self.service.event_ids()

    async def rank(self, app: str, body: bytes) -> dict[str, Any]:
        req: RankRequest = _validated(RankRequest, parse_json(body))
        excluded = set(req.excludedActions or ())
        event_id = self._event_id(req.eventId)
        if all(a.id in excluded for a in req.actions):
            raise ApiError(
                400, "invalid request", [{"loc": "actions", "msg": "every action is excluded"}]
            )

        def data(flat: bool) -> dict[str, Any]:
            return {
                "event_id": event_id,
                "context": _features(req.contextFeatures, "contextFeatures", flat),
                "actions": [
                    _action(a, f"actions[{i}]", flat)
                    for i, a in enumerate(req.actions)
                    if a.id not in excluded
                ],
                "deferred": bool(req.deferActivation),
            }

        decision, records = self._decide(app, data)
        decision = await self.service.log_decision(app, decision, records)
        kept = [a.id for a in req.actions if a.id in excluded]
        return {
            "ranking": _ranking(decision, kept),
            "eventId": decision.event_id,
            "rewardActionId": decision.action_id,
        }

    def _decide(self, app: str, data: Callable[[bool], dict[str, Any]]) -> tuple[Decision, list]:
        """Decide on the features as sent (flat namespaces: no pass over each feature); when
        they do not validate that way, on the full conversion (nested objects, lists, nulls)."""
        try:
            return self.service.decide_parsed(app, data(True))
        except ApiError as exc:
            if exc.status != 422:
                raise
        return self.service.decide_parsed(app, data(False))

    async def rank_multi_slot(self, app: str, body: bytes) -> dict[str, Any]:
        """One decision per slot, in order, each from the actions no earlier slot took (so each
        slot's logged probability is conditional on the slots above, as in Personalizer)."""
        req: MultiSlotRankRequest = _validated(MultiSlotRankRequest, parse_json(body))
        event_id = self._event_id(req.eventId)
        context = _features(req.contextFeatures, "contextFeatures")
        actions = {a.id: _action(a, f"actions[{i}]") for i, a in enumerate(req.actions)}
        names = [slot_name(s.id) for s in req.slots]
        if len(set(names)) != len(names):
            raise ApiError(
                400,
                "invalid request",
                [{"loc": "slots", "msg": f"slot ids must be unique as slot names, got {names}"}],
            )
        taken: set[str] = set()
        decided: list[tuple[Decision, list]] = []
        for i, (slot, name) in enumerate(zip(req.slots, names, strict=True)):
            excluded = taken | set(slot.excludedActions or ())
            ids = [a for a in actions if a not in excluded]
            if slot.baselineAction in ids:  # served first in apprentice mode, as in Personalizer
                ids.remove(slot.baselineAction)
                ids.insert(0, slot.baselineAction)
            if not ids:
                msg = "no action left for this slot (all excluded or taken by earlier slots)"
                raise ApiError(400, "invalid request", [{"loc": f"slots[{i}]", "msg": msg}])
            data = {
                "event_id": event_id,
                "context": {**context, **_features(slot.features, f"slots[{i}].features")},
                "slots": [{"id": name, "actions": [actions[a] for a in ids]}],
                "deferred": bool(req.deferActivation),
            }
            decision, records = self.service.decide_parsed(app, data, f"slots[{i}]")
            assert decision.slots is not None
            taken.add(decision.slots[0].action_id)
            decided.append((decision, records))
        first = decided[0][0]
        slots: list[SlotDecision] = [s for d, _ in decided for s in d.slots or ()]
        combined = Decision(event_id, None, None, [], first.model_version, first.mode, slots)
        records = [r for _, recs in decided for r in recs]
        decision = await self.service.log_decision(app, combined, records)
        by_name = {s.slot: s.action_id for s in decision.slots or ()}
        return {
            "slots": [
                {"id": s.id, "rewardActionId": by_name.get(n)}
                for s, n in zip(req.slots, names, strict=True)
            ],
            "eventId": event_id,
        }

    async def reward(self, app: str, event_id: str, body: bytes) -> None:
        req: RewardRequest = _validated(RewardRequest, parse_json(body))
        await self.service.rewards(app, orjson.dumps({"event_id": event_id, "value": req.value}))

    async def reward_multi_slot(self, app: str, event_id: str, body: bytes) -> None:
        req: MultiSlotRewardRequest = _validated(MultiSlotRewardRequest, parse_json(body))
        rewards = [
            {"event_id": event_id, "value": r.value, "slot": slot_name(r.slotId)}
            for r in req.reward
        ]
        await self.service.rewards(app, orjson.dumps({"rewards": rewards}))

    async def activate(self, app: str, event_id: str) -> None:
        await self.service.activate(app, event_id)

    async def _config(self, app: str) -> AppConfig:
        return AppConfig.model_validate((await self.service.info(app))["config"])

    async def _patch(self, app: str, patch: dict[str, Any]) -> AppConfig:
        info = await self.service.patch(app, orjson.dumps(patch))
        return AppConfig.model_validate(info["config"])

    async def get_service_configuration(self, app: str) -> dict[str, Any]:
        return service_configuration(await self._config(app))

    async def put_service_configuration(self, app: str, body: bytes) -> dict[str, Any]:
        data = parse_object(body, "a ServiceConfiguration object", status=400)
        try:
            patch = config_patch(await self._config(app), data)
        except ValueError as exc:
            raise ApiError(400, "invalid request", [str(exc)]) from None
        config = await self._patch(app, patch) if patch else await self._config(app)
        return service_configuration(config)

    async def get_policy(self, app: str) -> dict[str, Any]:
        config = await self._config(app)
        vw = [p for p in config.slot_policies().values() if p.kind == "vw"]
        if not vw:
            msg = f"the app's policy is {config.policy.kind!r}, not VW: it has no learning settings"
            raise ApiError(409, "conflict", [msg])
        return {"name": app, "arguments": learning_settings(vw[0])}

    async def put_policy(self, app: str, body: bytes) -> dict[str, Any]:
        req: PolicyContract = _validated(PolicyContract, parse_json(body))
        return await self._set_policy(app, req.arguments)

    async def reset_policy(self, app: str) -> dict[str, Any]:
        return await self._set_policy(app, DEFAULT_LEARNING_SETTINGS)

    async def _set_policy(self, app: str, arguments: str) -> dict[str, Any]:
        config = await self._config(app)
        current = next(iter(config.slot_policies().values()))
        try:
            policy = parse_learning_settings(arguments, current if current.kind == "vw" else None)
            make_policy(policy)  # VW itself accepts the arguments, or the app is left as it was
        except (LearningSettingsError, ValueError, RuntimeError) as exc:
            raise ApiError(400, "invalid learning settings", [str(exc)]) from None
        dumped = policy.model_dump(mode="json", by_alias=True)
        if config.slots is None:
            patch: dict[str, Any] = {"policy": dumped}
        else:
            patch = {"slots": [{"name": s.name, "policy": dumped} for s in config.slots]}
        await self._patch(app, patch)
        return {"name": app, "arguments": learning_settings(policy)}
