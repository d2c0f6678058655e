"""Typed configuration of an app: the policy of each slot, mode, floor, rewards, limits, privacy.

Every knob a user turns (explorer, its parameters, the floor, learning mode, reward
join rules, request limits) is a pydantic model, so a YAML file, an HTTP PATCH and a
Python call are validated by the same rules. `AppConfig` is what the engine decides with,
what the reward join waits by (`RewardConfig`) and what the learner learns under; the
policies' own configs are in `banditrec.policy_config` and are importable from here too.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from .decision.costs import CostScale
from .experiments.config import ExperimentConfig, PromotionConfig
from .policy_config import (
    RND,
    Bagging,
    EpsilonGreedy,
    EpsilonGreedyMABConfig,
    Explorer,
    FixedConfig,
    LinTSConfig,
    LinUCBConfig,
    OnlineCover,
    PolicyConfig,
    RegCB,
    RLPolicyConfig,
    Softmax,
    SquareCB,
    ThompsonConfig,
    UCB1Config,
    UniformConfig,
    VWCCBPolicyConfig,
    VWPolicyConfig,
    _Strict,
    cost_scale,
)
from .slate_config import SlateConfig

__all__ = [
    "APP_NAME_PATTERN",
    "RND",
    "AppConfig",
    "Bagging",
    "EpsilonGreedy",
    "EpsilonGreedyMABConfig",
    "Explorer",
    "FixedConfig",
    "Limits",
    "LinTSConfig",
    "LinUCBConfig",
    "Mode",
    "OnlineCover",
    "PolicyConfig",
    "PrivacyConfig",
    "RLPolicyConfig",
    "RegCB",
    "RetentionConfig",
    "RewardConfig",
    "SlotConfig",
    "Softmax",
    "SquareCB",
    "ThompsonConfig",
    "UCB1Config",
    "UniformConfig",
    "VWCCBPolicyConfig",
    "VWPolicyConfig",
    "cost_scale",
]

APP_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class Limits(_Strict):
    max_actions: int = Field(256, ge=1)
    max_features: int = Field(
        2048, ge=1, description="Features in the whole request, context and actions."
    )
    max_id_length: int = Field(256, ge=1)
    max_slots: int = Field(8, ge=1)


class RewardConfig(_Strict):
    default: float = Field(0.0, description="Reward joined when none arrives within the wait time.")
    wait_seconds: float = Field(60.0, ge=0.0, description="How long a decision waits for rewards.")
    aggregation: Literal["first", "sum", "max"] = "first"
    join_on_first: bool = Field(False, description="Join as soon as the first reward arrives.")


class RetentionConfig(_Strict):
    """How long the app's joined events are kept (the event log's defaults when unset)."""

    max_events: int | None = Field(None, ge=1, description="Joined events kept (newest).")
    max_age_days: float | None = Field(None, gt=0.0, description="Joined events kept this long.")


class PrivacyConfig(_Strict):
    """Identifiers, contact details and retention (docs/privacy.md)."""

    identifiers: list[str] = Field(
        default_factory=list,
        description="Fields ('namespace.feature') whose values are replaced by a keyed hash "
        "before the policy, the log or an export see them.",
    )
    subject: str | None = Field(
        None,
        description="The identifier that names the data subject, for erasure "
        "(default: the first identifier).",
    )
    contact_values: Literal["refuse", "hash", "allow"] = Field(
        "refuse",
        description="Other string values or names that look like e-mail addresses or "
        "phone numbers: refuse the request (422), hash them, or allow them.",
    )
    retention: RetentionConfig = Field(default_factory=RetentionConfig)

    @field_validator("identifiers")
    @classmethod
    def _fields(cls, v: list[str]) -> list[str]:
        for f in v:
            ns, _, name = f.partition(".")
            if not ns or not name or ns.startswith("_") or name.startswith("_"):
                raise ValueError(f"identifier {f!r} must be 'namespace.feature', e.g. 'user.id'")
        return v

    @model_validator(mode="after")
    def _subject_is_an_identifier(self) -> PrivacyConfig:
        if self.subject is not None and self.subject not in self.identifiers:
            raise ValueError(f"subject {self.subject!r} must be one of the identifiers")
        return self


class SlotConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    policy: PolicyConfig = Field(default_factory=VWPolicyConfig)


Mode = Literal["online", "apprentice", "logging"]


class AppConfig(_Strict):
    name: str = Field("default", pattern=APP_NAME_PATTERN)
    policy: PolicyConfig = Field(default_factory=VWPolicyConfig)
    slots: list[SlotConfig] | None = Field(
        None,
        description="Multi-slot app: one independent decision per named slot, each with its policy.",
    )
    mode: Mode = "online"
    min_probability: float = Field(
        0.001,
        ge=0.0,
        le=1.0,
        description="Floor on every action's probability, so logs stay usable for OPE.",
    )
    seed: int = Field(0, ge=0, description="App seed: draws are seeded by (seed, event id).")
    reward: RewardConfig = Field(default_factory=RewardConfig)
    limits: Limits = Field(default_factory=Limits)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    slate: SlateConfig | None = Field(
        None,
        description="Slate (ranked list) settings: default positions and standing rules.",
        # Unset, it is left out of dumps: a stored config reads the same on any version.
        exclude_if=lambda v: v is None,
    )
    experiment: ExperimentConfig | None = Field(
        None, description="Split traffic between policy variants (arms); see docs/experiments.md."
    )
    promotion: PromotionConfig | None = Field(
        None, description="In apprentice mode: go online once the learned policy is shown better."
    )

    @model_validator(mode="after")
    def _unique_slots(self) -> AppConfig:
        if self.slots is not None:
            names = [s.name for s in self.slots]
            if len(set(names)) != len(names):
                raise ValueError(f"slot names must be unique, got {names}")
            if not names:
                raise ValueError("slots, when given, must name at least one slot")
        arms = self.experiment.arms if self.experiment is not None else []
        if (self.slots is not None or self.slate is not None) and any(
            a.kind == "policy" for a in arms
        ):
            raise ValueError("arms of kind 'policy' are for single-slot apps (no slots, slate)")
        return self

    def cost_scales(self) -> dict[str | None, CostScale]:
        """Each slot's reward → cost map (a policy without a reward range: [0, 1])."""
        return {slot: cost_scale(p) for slot, p in self.slot_policies().items()}

    def slot_policies(self) -> dict[str | None, PolicyConfig]:
        """The policy of each slot; a single-slot app has one, under the key None."""
        if self.slots is None:
            return {None: self.policy}
        return {s.name: s.policy for s in self.slots}
