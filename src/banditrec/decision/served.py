"""What a decision is made of between the policy and the answer.

On the decide → log → join → learn path this sits inside decide: the engine
(decision/engine.py) reads its served state (`Served`: config, policies, model version,
experiment arms) once per request, makes one `SlotChoice` per slot (features, final pmf,
ranking) and answers with the `Decision` `build_decision` makes of them; the log records
(decision/record.py) and explanations (explain.py) are built from the same choices, and
`SlotChoice.interaction` is what the policy learns from once the reward is joined.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..config import AppConfig
from ..experiments import Assignment
from ..policies import Policy
from ..policy_config import PolicyConfig
from .features import FeatureSet, Interaction
from .schema import Decision, RankedAction, SlotDecision


@dataclass(frozen=True, slots=True)
class Served:
    """The state a request is decided with: replaced whole, in one assignment."""

    config: AppConfig
    policies: dict[str | None, Policy]
    version: int
    arms: dict[str, Policy] = field(default_factory=dict)  # `policy` arms (experiments/arms)
    # Per-slot settings the decision path reads on every request, derived once per config.
    action_id_feature: dict[str | None, bool] = field(init=False)
    policy_names: dict[str | None, str] = field(init=False)

    def __post_init__(self) -> None:
        slots = self.config.slot_policies()
        ids = {slot: getattr(cfg, "action_id_feature", True) for slot, cfg in slots.items()}
        names = {slot: _policy_name(cfg) for slot, cfg in slots.items()}
        object.__setattr__(self, "action_id_feature", ids)
        object.__setattr__(self, "policy_names", names)


@dataclass(frozen=True, slots=True)
class SlotChoice:
    """One slot's outcome: the inputs, the final pmf and the ranking (chosen first)."""

    slot: str | None
    features: FeatureSet
    order: list[int]
    probabilities: list[float]  # the served pmf, as the response and the log record take it
    arm: Assignment | None = None  # the experiment arm that served it, if any

    @property
    def pmf(self) -> np.ndarray:
        """The served pmf as an array (built on use: the serving path never needs one)."""
        return np.array(self.probabilities)

    @property
    def chosen(self) -> int:
        return self.order[0]

    def interaction(self, reward: float) -> Interaction:
        """What the policy learns from this choice once its reward is known."""
        chosen = self.order[0]
        return Interaction(self.features, chosen, self.probabilities[chosen], reward, self.slot)


class UnknownSlotError(ValueError):
    def __init__(self, slot: str | None, known: list[str]) -> None:
        what = "a single-slot request" if slot is None else f"slot {slot!r}"
        super().__init__(
            f"this app does not serve {what}; its slots are {known or 'none (single-slot app)'}"
        )


def _policy_name(pol: PolicyConfig) -> str:
    if pol.kind in ("vw", "vw_ccb"):
        return f"{pol.kind}:{pol.explorer.type}"
    return pol.kind


def _ranking(c: SlotChoice) -> list[RankedAction]:
    ids = c.features.action_ids
    probs = c.probabilities
    return [RankedAction(ids[i], probs[i]) for i in c.order]


def build_decision(event_id: str, served: Served, choices: list[SlotChoice]) -> Decision:
    mode = served.config.mode
    arm = choices[0].arm if choices else None  # one arm per request, whatever the slots
    arm_fields = (None, None) if arm is None else (arm.arm.name, arm.probability)
    if len(choices) == 1 and choices[0].slot is None:
        c = choices[0]
        ranking = _ranking(c)
        top = ranking[0]
        return Decision(
            event_id, top.id, top.probability, ranking, served.version, mode, None, *arm_fields
        )
    slots = []
    for c in choices:
        ranking = _ranking(c)
        slots.append(SlotDecision(c.slot, ranking[0].id, ranking[0].probability, ranking))
    return Decision(event_id, None, None, [], served.version, mode, slots, *arm_fields)
