"""Decide and record outside the service: the one path every simulator takes.

The simulation harness (`simulate/harness.py`), RL journey collection (`rl/collect.py`)
and simulated OPE logs (`replay/simulated.py`) build their `FeatureSet`s themselves, so they
skip the request and response objects, but not the decision: `Recorder.decide` is
`DecisionEngine.choose_features` for one single-slot decision (the served pmf and the
event-seeded draw: what `decide` returns for the same event id). `Recorder.joined` is the
decision's log record joined with its reward, as the service's log and join make it
(`record.build_record`, then `record.set_reward` on the policy's reward range), stamped
from a fixed clock so that a run's log is byte-for-byte reproducible; and
`SlotChoice.interaction` is what the policy learns from the step.
"""

from __future__ import annotations

from typing import Any

from .engine import DecisionEngine
from .features import FeatureSet
from .record import build_record, set_reward
from .served import SlotChoice

# Simulated decisions are stamped from a fixed clock (one second per step).
SIM_EPOCH = 1_700_000_000.0


class Recorder:
    """Single-slot decisions of `engine` and their joined records, logged under `policy`
    (the policy kind of the app when not given)."""

    def __init__(self, engine: DecisionEngine, *, policy: str | None = None) -> None:
        config = engine.config
        if config.slots is not None:
            raise ValueError(
                "a simulator presents one decision per step: use a single-slot app "
                f"(this one has slots {[s.name for s in config.slots]})"
            )
        self.engine = engine
        self.policy = policy if policy is not None else config.policy.kind
        self._scale = config.cost_scales()[None]

    def decide(self, event_id: str, x: FeatureSet) -> SlotChoice:
        """The served decision on `x` for `event_id`."""
        _, (choice,) = self.engine.choose_features(event_id, {None: x})
        return choice

    def joined(
        self, event_id: str, choice: SlotChoice, reward: float, now: float
    ) -> dict[str, Any]:
        """The joined DSJson record of `choice` with `reward`, decided and joined at `now`."""
        config = self.engine.config
        record = build_record(
            app=config.name,
            event_id=event_id,
            features=choice.features,
            pmf=choice.probabilities,
            order=choice.order,
            model_version=self.engine.model_version,
            policy=self.policy,
            mode=config.mode,
            now=now,
        )
        return set_reward(record, reward, joined_at=now, scale=self._scale)
