"""Typed configuration of the policy that serves an app (or one of its slots).

The first thing the decide → log → join → learn path reads: each policy kind (VW with its
explorers, VW CCB, the numpy linear policies, the non-contextual bandits, the baselines,
a trained RL module) has its own pydantic model, told apart by `kind`, and `PolicyConfig`
is their union. An app's config (`banditrec.config.AppConfig`) holds one per slot; the
policy code under `policies/` builds each from its config.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .decision.costs import UNIT, CostScale
from .experiments.config import ArmConfig, ExperimentConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- VW explorers -------------------------------------------------------------------


class EpsilonGreedy(_Strict):
    type: Literal["epsilon"] = "epsilon"
    epsilon: float = Field(0.05, ge=0.0, le=1.0)

    def vw_args(self) -> list[str]:
        return ["--epsilon", str(self.epsilon)]


class Softmax(_Strict):
    type: Literal["softmax"] = "softmax"
    lambda_: float = Field(10.0, alias="lambda", ge=0.0)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def vw_args(self) -> list[str]:
        return ["--softmax", "--lambda", str(self.lambda_)]


class Bagging(_Strict):
    type: Literal["bag"] = "bag"
    bags: int = Field(5, ge=2, le=64)
    epsilon: float = Field(0.0, ge=0.0, le=1.0)
    greedify: bool = False

    def vw_args(self) -> list[str]:
        args = ["--bag", str(self.bags), "--epsilon", str(self.epsilon)]
        return [*args, "--greedify"] if self.greedify else args


class OnlineCover(_Strict):
    type: Literal["cover"] = "cover"
    policies: int = Field(3, ge=1, le=64)
    psi: float = Field(1.0, ge=0.0)
    nounif: bool = False

    def vw_args(self) -> list[str]:
        args = ["--cover", str(self.policies), "--psi", str(self.psi)]
        return [*args, "--nounif"] if self.nounif else args


class SquareCB(_Strict):
    type: Literal["squarecb"] = "squarecb"
    gamma_scale: float = Field(10.0, gt=0.0)
    gamma_exponent: float = Field(0.5, ge=0.0)

    def vw_args(self) -> list[str]:
        return [
            "--squarecb",
            "--gamma_scale",
            str(self.gamma_scale),
            "--gamma_exponent",
            str(self.gamma_exponent),
        ]


class RegCB(_Strict):
    type: Literal["regcb"] = "regcb"
    optimistic: bool = False
    mellowness: float = Field(0.1, gt=0.0)

    def vw_args(self) -> list[str]:
        return [
            "--regcbopt" if self.optimistic else "--regcb",
            "--mellowness",
            str(self.mellowness),
        ]


class RND(_Strict):
    type: Literal["rnd"] = "rnd"
    networks: int = Field(3, ge=1, le=64)
    alpha: float = Field(0.1, ge=0.0)
    invlambda: float = Field(0.1, gt=0.0)

    def vw_args(self) -> list[str]:
        return [
            "--rnd",
            str(self.networks),
            "--rnd_alpha",
            str(self.alpha),
            "--rnd_invlambda",
            str(self.invlambda),
        ]


Explorer = Annotated[
    EpsilonGreedy | Softmax | Bagging | OnlineCover | SquareCB | RegCB | RND,
    Field(discriminator="type"),
]

# Options that would change VW's I/O or driver rather than the model; refusing them keeps
# the raw-args escape hatch from breaking the service (files on disk, stdin, etc.).
_FORBIDDEN_VW_ARGS = re.compile(
    r"(-d|--data|-f|--final_regressor|-i|--initial_regressor|-c|--cache|--cache_file|"
    r"--dsjson|--json|-p|--predictions|--daemon|--port|--save_resume|-r|--raw_predictions)"
)
# ... also as `--data=x` or, for the short ones, `-dx`
_FORBIDDEN_SHORT = frozenset("dficpr")


def _forbidden_vw_arg(arg: str) -> bool:
    name = arg.split("=", 1)[0]
    short = arg[:1] == "-" and arg[1:2] in _FORBIDDEN_SHORT
    return bool(_FORBIDDEN_VW_ARGS.fullmatch(name)) or short


class VWPolicyConfig(_Strict):
    """Vowpal Wabbit `cb_explore_adf` with action-dependent features."""

    kind: Literal["vw"] = "vw"
    explorer: Explorer = Field(
        default_factory=lambda: SquareCB(gamma_scale=30.0),
        description="How the policy explores; the default, SquareCB with gamma_scale 30, was "
        "chosen by bench/bench_quality.py against VW's own explorers (BENCHMARKS.md).",
    )
    cb_type: Literal["ips", "dr", "mtr", "dm"] = "mtr"
    interactions: list[str] | None = Field(
        None,
        description="Namespace interactions. Unset (the default): every context namespace "
        "crossed with every action namespace (the action id's 'id' included), by full name, "
        "as namespaces appear. A list: exactly these, by first letter as VW's -q/--interactions, "
        "e.g. ['ut'] crosses namespaces starting with 'u' (user) and 't' (topic); [] for none.",
    )
    learning_rate: float | None = Field(
        1.0, gt=0.0, description="VW's -l (None: VW's own default, 0.5); 1.0 measured best."
    )
    power_t: float | None = Field(None, ge=0.0)
    l2: float | None = Field(None, ge=0.0)
    bits: int = Field(18, ge=8, le=28)
    reward_range: tuple[float, float] = Field(
        (0.0, 1.0),
        description="Smallest and largest reward: VW learns cost = (high − reward) / (high − low), "
        "so the best reward is cost 0, the value untried actions start from (see decision/costs.py).",
    )
    action_id_feature: bool = Field(
        True,
        description="Add each action's id as a feature (namespace 'id') so per-item effects are learned.",
    )
    extra_args: list[str] = Field(
        default_factory=list, description="Raw VW arguments appended last."
    )

    @field_validator("interactions")
    @classmethod
    def _interactions_are_letters(cls, v: list[str] | None) -> list[str] | None:
        for term in v or ():
            # ASCII only: VW indexes a namespace by its first byte (see decision/features.py)
            if not (2 <= len(term) <= 4) or not all(
                c.isascii() and (c.isalnum() or c in ":~") for c in term
            ):
                raise ValueError(
                    f"interaction {term!r} must be 2 to 4 namespace first letters (ASCII letters or digits, "
                    "'~' for namespaces that start with a non-ASCII character, ':' for all), e.g. 'ua'"
                )
        return v

    @field_validator("reward_range")
    @classmethod
    def _ordered(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not v[0] < v[1]:
            raise ValueError(f"reward_range must be (low, high) with low < high, got {v}")
        return v

    @field_validator("extra_args")
    @classmethod
    def _no_io_args(cls, v: list[str]) -> list[str]:
        for arg in v:
            if not arg.isascii() or "\x00" in arg:
                raise ValueError(
                    f"VW argument {arg!r} must be ASCII without NUL: VW reads namespaces "
                    "by their first byte (see decision/features.py)"
                )
            if _forbidden_vw_arg(arg):
                raise ValueError(
                    f"VW argument {arg!r} controls files or I/O and is not allowed here"
                )
        return v

    def vw_args(self) -> list[str]:
        # preserve_performance_counters: a model reloaded from bytes continues exactly where a
        # never-stopped one would (restarted learners must be indistinguishable from clean runs)
        args = ["--cb_explore_adf", "--quiet", "--preserve_performance_counters"]
        args += ["--cb_type", self.cb_type, "-b", str(self.bits)]
        # Costs are in [0, 1] (see `cost_scale`), the range VW's SquareCB and RegCB assume.
        args += self.explorer.vw_args()
        for term in self.interactions or ():
            args += ["--interactions", term]
        if self.learning_rate is not None:
            args += ["-l", str(self.learning_rate)]
        if self.power_t is not None:
            args += ["--power_t", str(self.power_t)]
        if self.l2 is not None:
            args += ["--l2", str(self.l2)]
        return args + list(self.extra_args)

    def cost_scale(self) -> CostScale:
        return CostScale(*self.reward_range)


class VWCCBPolicyConfig(VWPolicyConfig):
    """Vowpal Wabbit `ccb_explore_adf`: slates learned as VW's conditional contextual bandit.

    The same knobs as `vw` (its `vw_args`, with VW's CCB reduction in place of
    `--cb_explore_adf`); each position of a slate is one CCB slot over the candidates the
    positions above left (see policies/vw_ccb.py and docs/slates.md).
    """

    kind: Literal["vw_ccb"] = "vw_ccb"  # type: ignore[assignment]

    def vw_args(self) -> list[str]:
        return ["--ccb_explore_adf" if a == "--cb_explore_adf" else a for a in super().vw_args()]


# --- numpy linear policies ------------------------------------------------------------


class LinUCBConfig(_Strict):
    kind: Literal["linucb"] = "linucb"
    alpha: float = Field(1.0, ge=0.0, description="Width of the confidence bonus.")
    dim: int = Field(256, ge=4, le=4096, description="Hashed feature dimension.")
    ridge: float = Field(1.0, gt=0.0)


class LinTSConfig(_Strict):
    kind: Literal["lin_ts"] = "lin_ts"
    v: float = Field(0.5, gt=0.0, description="Posterior scale.")
    dim: int = Field(256, ge=4, le=4096)
    ridge: float = Field(1.0, gt=0.0)
    samples: int = Field(
        128, ge=8, le=4096, description="Posterior draws used to estimate the pmf."
    )


# --- non-contextual -------------------------------------------------------------------


class EpsilonGreedyMABConfig(_Strict):
    kind: Literal["mab_epsilon"] = "mab_epsilon"
    epsilon: float = Field(0.1, ge=0.0, le=1.0)


class UCB1Config(_Strict):
    kind: Literal["ucb1"] = "ucb1"
    c: float = Field(2.0, ge=0.0, description="Exploration constant: mean + sqrt(c ln t / n).")


class ThompsonConfig(_Strict):
    kind: Literal["thompson"] = "thompson"
    likelihood: Literal["beta", "gaussian"] = "beta"
    prior_alpha: float = Field(1.0, gt=0.0)
    prior_beta: float = Field(1.0, gt=0.0)
    samples: int = Field(256, ge=8, le=4096)


# --- baselines ------------------------------------------------------------------------


class UniformConfig(_Strict):
    kind: Literal["uniform"] = "uniform"


class FixedConfig(_Strict):
    kind: Literal["fixed"] = "fixed"
    action_id: str | None = Field(
        None,
        description="Serve this action when offered; otherwise (or when unset) the first action.",
    )


# --- reinforcement learning -----------------------------------------------------------


class RLPolicyConfig(_Strict):
    """A trained RLlib module (see docs/rl.md); RL policies are trained offline, not online."""

    kind: Literal["rl"] = "rl"
    module_path: str | None = Field(
        None,
        description="Exported module (.npz, written by `banditrec train-rl`) on the server; "
        "a module published to the model registry takes precedence.",
    )
    greedy: bool = Field(
        False, description="Serve the module's most likely action instead of its distribution."
    )
    temperature: float = Field(
        1.0, gt=0.0, description="Softmax temperature on the module's action-distribution inputs."
    )
    state_namespace: str = Field(
        "state",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_]{0,63}$",
        description="Context namespace that carries the observation features.",
    )


PolicyConfig = Annotated[
    VWPolicyConfig
    | VWCCBPolicyConfig
    | LinUCBConfig
    | LinTSConfig
    | EpsilonGreedyMABConfig
    | UCB1Config
    | ThompsonConfig
    | UniformConfig
    | FixedConfig
    | RLPolicyConfig,
    Field(discriminator="kind"),
]
# An experiment's `policy` arm carries a PolicyConfig (experiments/config.py).
ArmConfig.model_rebuild(_types_namespace={"PolicyConfig": PolicyConfig})
ExperimentConfig.model_rebuild()


def cost_scale(policy: PolicyConfig) -> CostScale:
    """The reward → cost map of a policy's log records: its reward range, else [0, 1]."""
    return policy.cost_scale() if isinstance(policy, VWPolicyConfig) else UNIT
