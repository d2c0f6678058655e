"""A slate request (N candidates, k positions, rules) and the slate it gets back."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field, ValidationInfo, model_validator

from ..decision.schema import (
    EVENT_ID_PATTERN,
    Action,
    DecisionRequest,
    ExplorationOverride,
    NamespacedFeatures,
    RankedAction,
    _Model,
    new_event_id,
)
from ..slate_config import SlateRules


class SlateRequest(_Model):
    """Rank `positions` of the offered `actions` (all distinct), under `rules`."""

    event_id: str = Field(default_factory=new_event_id, pattern=EVENT_ID_PATTERN)
    context: NamespacedFeatures = Field(default_factory=dict)
    actions: list[Action] = Field(min_length=1)
    positions: int | None = Field(
        None, ge=1, description="How many positions to fill; the app's default when unset."
    )
    rules: SlateRules | None = None
    exploration: ExplorationOverride | None = None
    deferred: bool = Field(False, description="The event counts only once activated.")

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> SlateRequest:
        # The same checks as a single decision's (ids, features, limits), one pass.
        DecisionRequest.model_validate(
            {"context": self.context, "actions": self.actions}, context=info.context
        )
        if self.positions is not None and self.positions > len(self.actions):
            raise ValueError(
                f"positions: {self.positions} positions but {len(self.actions)} actions; "
                "send at least as many actions as positions"
            )
        return self


@dataclass(frozen=True, slots=True)
class SlatePosition:
    """One position: its action and the probability it was drawn with, given the positions
    above (VW's CCB convention); `pinned` when a rule put it there."""

    position: int
    action_id: str
    probability: float
    pinned: bool = False


@dataclass(frozen=True, slots=True)
class SlateDecision:
    """The slate, position by position, then every candidate ranked: the slate first, then
    the candidates left by their probability at the last position."""

    event_id: str
    slate: list[SlatePosition]
    ranking: list[RankedAction]
    model_version: int = 0
    mode: str = "online"


def slate_request_body(
    context: dict | None,
    actions: list,
    *,
    positions: int | None = None,
    rules: dict | None = None,
    event_id: str | None = None,
    exploration: dict | None = None,
    deferred: bool = False,
) -> dict:
    """A slate request body, its event id fixed now (so retries are idempotent); an action
    may be given as a bare id."""
    body: dict = {"event_id": event_id or new_event_id(), "context": dict(context or {})}
    body["actions"] = [{"id": a} if isinstance(a, str) else dict(a) for a in actions]
    for key, value in (("positions", positions), ("rules", rules), ("exploration", exploration)):
        if value is not None:
            body[key] = value
    if deferred:
        body["deferred"] = True
    return body


def slate_from_json(d: dict) -> SlateDecision:
    return SlateDecision(
        event_id=d["event_id"],
        slate=[
            SlatePosition(
                int(p["position"]), p["action_id"], float(p["probability"]), bool(p.get("pinned"))
            )
            for p in d["slate"]
        ],
        ranking=[RankedAction(r["id"], float(r["probability"])) for r in d.get("ranking") or []],
        model_version=int(d.get("model_version", 0)),
        mode=d.get("mode", "online"),
    )
