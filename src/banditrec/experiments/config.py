"""An app's experiment: arms (policy variants), their traffic weights, the guardrail.

Kept apart from `banditrec.config` (which holds it as `AppConfig.experiment`) so the
experiment code imports no policy code. A `policy` arm's `policy` is a `PolicyConfig`,
named here only for type checkers; `banditrec.policy_config` resolves it once that is
defined.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from ..config import PolicyConfig

ArmKind = Literal["learned", "default", "uniform", "policy"]
GUARDED_KINDS = ("learned", "policy")  # arms the guardrail compares with the default arm


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ArmConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    kind: ArmKind = Field(
        description="learned: the app's policy; default: the default action (the first "
        "offered); uniform: every action alike (a holdout that keeps logs evaluable); "
        "policy: the arm's own `policy` config, with a model of its own learned from "
        "every arm's traffic."
    )
    weight: float = Field(1.0, ge=0.0, description="Share of units, relative to the others.")
    policy: PolicyConfig | None = Field(
        None,
        description="A `policy` arm's policy, written as the app's `policy` is.",
        exclude_if=lambda v: v is None,  # other arms dump as they always did
    )

    @model_validator(mode="after")
    def _policy_iff_policy_kind(self) -> ArmConfig:
        if self.kind == "policy" and self.policy is None:
            raise ValueError(f"arm {self.name!r} of kind 'policy' needs a `policy` block")
        if self.kind != "policy" and self.policy is not None:
            raise ValueError(
                f"arm {self.name!r}: only an arm of kind 'policy' takes a `policy` block"
            )
        return self


class GuardrailConfig(_Strict):
    enabled: bool = True
    min_decisions: int = Field(
        200, ge=10, description="Joined decisions each arm needs before the guardrail judges."
    )
    window_minutes: int = Field(60, ge=1, le=2880, description="Recent window it judges on.")


class PromotionConfig(_Strict):
    """Apprentice → online when the learned policy's counterfactual lower bound beats the
    default action's value (experiments/promotion.py)."""

    enabled: bool = True
    min_events: int = Field(1000, ge=50, description="Joined decisions needed to judge.")
    window_events: int = Field(5000, ge=50, le=100_000, description="Most recent ones used.")
    interval_seconds: float = Field(
        30.0, ge=1.0, le=86_400, description="How often it is judged (a pass is not cheap)."
    )


class EvaluationConfig(_Strict):
    """Each arm's off-policy estimate on every arm's traffic (experiments/offpolicy.py)."""

    enabled: bool = True
    window_events: int = Field(5000, ge=50, le=100_000, description="Most recent ones used.")
    interval_seconds: float = Field(
        30.0, ge=1.0, le=86_400, description="How often it is estimated (a pass is not cheap)."
    )


class ExperimentConfig(_Strict):
    """Units (the request's `unit_id`, else its event id) are split between arms by a
    stable hash, in proportion to the weights."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    arms: list[ArmConfig] = Field(min_length=2, max_length=16)
    guardrail: GuardrailConfig = Field(default_factory=GuardrailConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    srm_p_value: float = Field(
        0.001, gt=0.0, lt=1.0, description="Sample-ratio mismatch is flagged below this p."
    )

    @model_validator(mode="after")
    def _check(self) -> ExperimentConfig:
        names = [a.name for a in self.arms]
        if len(set(names)) != len(names):
            raise ValueError(f"arm names must be unique, got {names}")
        if not any(a.weight > 0 for a in self.arms):
            raise ValueError("at least one arm needs a weight above 0")
        return self
