"""The wire format: what products send and what they get back (the log record: `record.py`).

Requests are validated against the app's `Limits` when they are passed in the pydantic
validation context (`DecisionRequest.model_validate(data, context={"limits": limits})`);
without one, the defaults apply. Every error names the field and says what to fix.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictStr,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from ..config import Limits

# A feature value is a boolean, number or string. Pydantic checks only the shape here; the
# value types are checked by `_check_features` in the same pass that checks names and
# finiteness: a four-way strict union per value cost ~50 µs per 120-feature request, more
# than the rest of the validation together.
FeatureValue = Annotated[
    Any,
    WithJsonSchema({"anyOf": [{"type": t} for t in ("boolean", "integer", "number", "string")]}),
]
Namespace = dict[str, FeatureValue]
NamespacedFeatures = dict[str, Namespace]
_PLAIN_VALUES = frozenset({bool, int, str})

DEFAULT_LIMITS = Limits()
EVENT_ID_PATTERN = r"^[A-Za-z0-9_.:@/+=-]{1,256}$"


def _limits(info: ValidationInfo) -> Limits:
    ctx = info.context or {}
    return ctx.get("limits", DEFAULT_LIMITS)


def _check_features(features: NamespacedFeatures, where: str) -> int:
    """Reject what VW would silently drop or mangle; return the feature count.

    This runs for every feature of every request, so it indexes rather than calls methods."""
    count = 0
    isfinite = math.isfinite
    for ns, feats in features.items():
        if not ns or ns[0] == "_":
            raise ValueError(f"{where}: namespace {ns!r} must be non-empty and not start with '_'")
        if ns[0] == "~" and ns[1:2] >= "\x80":
            raise ValueError(
                f"{where}: namespace {ns!r} is reserved: a namespace starting with a non-ASCII "
                f"character is stored as '~' + its name; send {ns[1:]!r} instead"
            )
        for name, value in feats.items():
            if not name or name[0] == "_":
                raise ValueError(
                    f"{where}.{ns}: feature name {name!r} must be non-empty and not start with '_'"
                )
            kind = type(value)
            if kind is float:
                if not isfinite(value):
                    raise _not_finite(f"{where}.{ns}.{name}", value)
            elif kind not in _PLAIN_VALUES:
                _check_unusual_value(value, f"{where}.{ns}.{name}")
        count += len(feats)
    return count


def _check_unusual_value(value: object, where: str) -> None:
    """Subclasses of the plain types (numpy floats, say) pass; anything else is refused."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _not_finite(where, value)
    elif not isinstance(value, (bool, int, str)):
        raise ValueError(
            f"{where}: value {value!r} is {_kind(value)}; send a boolean, a number or a string"
        )


def _not_finite(where: str, value: float) -> ValueError:
    return ValueError(f"{where}: value {value} is not finite; send a real number")


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {list: "a list", dict: "an object"}.get(type(value), f"a {type(value).__name__}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Action(_Model):
    """An action to choose from; its id length limit is checked by `DecisionRequest`."""

    id: StrictStr = Field(min_length=1)
    features: NamespacedFeatures = Field(default_factory=dict)


class SlotRequest(_Model):
    id: StrictStr = Field(min_length=1, max_length=64)
    actions: list[Action] = Field(min_length=1)


class ExplorationOverride(_Model):
    """Per-request exploration on top of the app's explorer."""

    epsilon: float | None = Field(
        None, ge=0.0, le=1.0, description="Extra uniform exploration mixed into the policy's pmf."
    )
    min_probability: float | None = Field(
        None, ge=0.0, le=1.0, description="Floor for this request."
    )


def new_event_id() -> str:
    return uuid.uuid4().hex


class DecisionRequest(_Model):
    event_id: str = Field(default_factory=new_event_id, pattern=EVENT_ID_PATTERN)
    context: NamespacedFeatures = Field(default_factory=dict)
    actions: list[Action] | None = Field(None, min_length=1)
    slots: list[SlotRequest] | None = Field(None, min_length=1)
    exploration: ExplorationOverride | None = None
    deferred: bool = Field(False, description="The event counts only once activated.")
    explain: bool = Field(
        False, description="Add why: scores, feature contributions, exploration (docs/privacy.md)."
    )
    opt_out: bool = Field(
        False,
        description="The user opted out of personalization: serve the default action, log nothing.",
    )
    unit_id: str | None = Field(
        None,
        pattern=EVENT_ID_PATTERN,
        description="The unit (a user) an app's experiment assigns to an arm; the event id if absent.",
    )

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> DecisionRequest:
        limits = _limits(info)
        if (self.actions is None) == (self.slots is None):
            raise ValueError(
                "send either 'actions' (one decision) or 'slots' (one decision per slot)"
            )
        n_features = _check_features(self.context, "context")
        groups = (
            [("actions", self.actions)]
            if self.actions is not None
            else [(f"slots[{i}]", s.actions) for i, s in enumerate(self.slots or [])]
        )
        if self.slots is not None:
            if len(self.slots) > limits.max_slots:
                raise ValueError(f"{len(self.slots)} slots; the limit is {limits.max_slots}")
            ids = [s.id for s in self.slots]
            if len(set(ids)) != len(ids):
                raise ValueError(f"slot ids must be unique, got {ids}")
        for where, actions in groups:
            assert actions is not None
            if len(actions) > limits.max_actions:
                raise ValueError(
                    f"{where}: {len(actions)} actions; the limit is {limits.max_actions}"
                )
            seen: set[str] = set()
            for i, a in enumerate(actions):
                if a.id in seen:
                    raise ValueError(f"{where}[{i}].id: duplicate action id {a.id!r}")
                if len(a.id) > limits.max_id_length:
                    raise ValueError(
                        f"{where}[{i}].id: action id is {len(a.id)} characters long; "
                        f"the limit is {limits.max_id_length}"
                    )
                seen.add(a.id)
                n_features += _check_features(a.features, f"{where}[{i}].features")
        if n_features > limits.max_features:
            raise ValueError(
                f"{n_features} features in the request; the limit is {limits.max_features}"
            )
        return self


# The engine returns these on every decision; plain frozen dataclasses cost a fraction
# of a pydantic model to build, serialize directly with orjson, and FastAPI documents
# them in the OpenAPI schema all the same.
@dataclass(frozen=True, slots=True)
class RankedAction:
    id: str
    probability: float


@dataclass(frozen=True, slots=True)
class SlotDecision:
    slot: str
    action_id: str
    probability: float
    ranking: list[RankedAction]


@dataclass(frozen=True, slots=True)
class Decision:
    """The chosen action (or one per slot), its probability, the full ranking, the model version.

    `ranking` lists the chosen action first, then the rest by probability. When the app
    runs an experiment, `arm` names the arm that served the request and `arm_probability`
    is that arm's share of units (docs/experiments.md); both are null otherwise.
    """

    event_id: str
    action_id: str | None
    probability: float | None
    ranking: list[RankedAction]
    model_version: int = 0
    mode: str = "online"
    slots: list[SlotDecision] | None = None
    arm: Annotated[
        str | None, Field(description="The experiment arm that served it; null without one.")
    ] = None
    arm_probability: Annotated[
        float | None,
        Field(
            description="The arm's share of units (its weight over all weights); null without one."
        ),
    ] = None


class Reward(_Model):
    event_id: str = Field(pattern=EVENT_ID_PATTERN)
    value: StrictFloat = Field(
        description="Reward: a finite JSON number (not a string, not a boolean). "
        "Cost in the log is its negative."
    )
    slot: StrictStr | None = Field(
        None, description="For multi-slot events: which slot; none = every slot."
    )

    @field_validator("value")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError(f"reward {v} is not finite; send a real number")
        return v
