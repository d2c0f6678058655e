"""Personalizer's settings ↔ banditrec app configs.

Learning settings: Personalizer's policy is a VW command line
(`--cb_explore_adf --epsilon 0.2 --power_t 0 -l 0.001 --cb_type mtr -q ::`);
`parse_learning_settings` turns one into a `VWPolicyConfig` and `learning_settings` writes
one back. Options VW would take from a file or stdin (`--dsjson`, `-d`, `-f`, …) say how
Personalizer ran VW, not what it learned, and are dropped; options with no field of their own
(`--l1 1e-07`, `--noconstant`, …) are kept in `extra_args`. What the string leaves out is
VW's own default (epsilon-greedy at 0.05, `--cb_type mtr`), not banditrec's.

>>> cfg = parse_learning_settings(DEFAULT_LEARNING_SETTINGS)
>>> cfg.explorer.epsilon, cfg.cb_type, cfg.learning_rate, cfg.power_t, cfg.interactions
(0.2, 'mtr', 0.001, 0.0, ['::'])
>>> learning_settings(cfg)
'--cb_explore_adf --epsilon 0.2 --cb_type mtr -l 0.001 --power_t 0 -q ::'

Service settings: `service_configuration` reads Personalizer's service configuration off an
app config; `config_patch` turns one into a merge patch of the app (`PATCH /v1/apps/{app}`).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from ..config import AppConfig
from ..policy_config import PolicyConfig, VWPolicyConfig

DEFAULT_LEARNING_SETTINGS = (
    "--cb_explore_adf --epsilon 0.2 --power_t 0 -l 0.001 --cb_type mtr -q ::"
)
VW_DEFAULT_EPSILON = 0.05

# Options that name VW's input, output or driver: how Personalizer ran VW, not the model.
_IO_FLAGS = {"--cb_explore_adf", "--dsjson", "--json", "--quiet", "--preserve_performance_counters"}
_IO_WITH_VALUE = {"-d", "--data", "-f", "--final_regressor", "-i", "--initial_regressor", "-p"}
_IO_WITH_VALUE |= {"--predictions", "--cache_file", "--id", "--readable_model", "--invert_hash"}
_IO_FLAGS |= {"-c", "--cache", "--save_resume", "--daemon", "--compressed"}

_EXPLORERS: dict[str, tuple[str, dict[str, tuple[str, Callable[[str], Any]]]]] = {
    # VW flag → (explorer type, {VW option: (field, parse)}); the flag itself may take a value
    "--softmax": ("softmax", {"--lambda": ("lambda", float)}),
    "--bag": ("bag", {"--bag": ("bags", int), "--greedify": ("greedify", bool)}),
    "--cover": ("cover", {"--cover": ("policies", int), "--psi": ("psi", float)}),
    "--squarecb": (
        "squarecb",
        {"--gamma_scale": ("gamma_scale", float), "--gamma_exponent": ("gamma_exponent", float)},
    ),
    "--regcb": ("regcb", {"--mellowness": ("mellowness", float)}),
    "--regcbopt": ("regcb", {"--mellowness": ("mellowness", float)}),
    "--rnd": (
        "rnd",
        {
            "--rnd": ("networks", int),
            "--rnd_alpha": ("alpha", float),
            "--rnd_invlambda": ("invlambda", float),
        },
    ),
}
_SCALARS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "-l": ("learning_rate", float),
    "--learning_rate": ("learning_rate", float),
    "--power_t": ("power_t", float),
    "--l2": ("l2", float),
    "-b": ("bits", int),
    "--bit_precision": ("bits", int),
    "--cb_type": ("cb_type", str),
}
_INTERACTIONS = {"-q", "--quadratic", "--cubic", "--interactions"}


class LearningSettingsError(ValueError):
    """A learning-settings string that does not map onto a VW policy; says which option."""


def _number(text: str) -> str:
    """VW-style numbers: 0, 0.2, 1e-07 (no trailing .0)."""
    value = float(text)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def parse_learning_settings(arguments: str, base: VWPolicyConfig | None = None) -> VWPolicyConfig:
    """A `VWPolicyConfig` from a learning-settings string; fields the string cannot express
    (`action_id_feature`, `reward_range`) come from `base`."""
    try:
        tokens = shlex.split(arguments)
    except ValueError as exc:
        raise LearningSettingsError(f"cannot split the arguments: {exc}") from None
    fields: dict[str, Any] = {}
    explorer: dict[str, Any] = {}
    epsilon: float | None = None
    interactions: list[str] = []
    extra: list[str] = []
    i = 0

    def value(option: str) -> str:
        if i + 1 >= len(tokens):
            raise LearningSettingsError(f"{option} needs a value")
        return tokens[i + 1]

    try:
        while i < len(tokens):
            tok = tokens[i]
            if tok in _IO_FLAGS:
                i += 1
            elif tok in _IO_WITH_VALUE:
                i += 2
            elif tok == "--epsilon":
                epsilon = float(value(tok))
                i += 2
            elif tok in _SCALARS:
                name, parse = _SCALARS[tok]
                fields[name] = parse(value(tok))
                i += 2
            elif tok in _INTERACTIONS:
                interactions.append(value(tok))
                i += 2
            elif tok in _EXPLORERS or any(tok in opts for _, opts in _EXPLORERS.values()):
                if tok in _EXPLORERS:
                    kind, _ = _EXPLORERS[tok]
                    if explorer.get("type", kind) != kind:
                        raise LearningSettingsError(f"{tok}: more than one explorer given")
                    explorer["type"] = kind
                options = {o: f for _, opts in _EXPLORERS.values() for o, f in opts.items()}
                if tok in options:
                    name, parse = options[tok]
                    if parse is bool:  # a flag: --greedify
                        explorer[name] = True
                        i += 1
                        continue
                    explorer[name] = parse(value(tok))
                    i += 2
                else:  # an explorer's flag without a value: --softmax, --regcb, …
                    i += 1
            elif tok == "--nounif":
                explorer["nounif"] = True
                i += 1
            elif tok.startswith("-"):
                extra.append(tok)
                i += 1
                while (
                    i < len(tokens) and not tokens[i].startswith("--") and not _is_flag(tokens[i])
                ):
                    extra.append(tokens[i])
                    i += 1
            else:
                raise LearningSettingsError(f"unexpected argument {tok!r}")
    except ValueError as exc:
        if isinstance(exc, LearningSettingsError):
            raise
        raise LearningSettingsError(f"{tokens[i]}: {exc}") from None
    if explorer.get("type") == "regcb" and "--regcbopt" in tokens:
        explorer["optimistic"] = True
    if not explorer:
        explorer = {
            "type": "epsilon",
            "epsilon": VW_DEFAULT_EPSILON if epsilon is None else epsilon,
        }
    elif epsilon is not None and explorer["type"] == "bag":
        explorer["epsilon"] = epsilon
    elif epsilon is not None:
        raise LearningSettingsError(
            f"--epsilon with --{explorer['type']}: banditrec's {explorer['type']} explorer "
            "takes no epsilon"
        )
    keep = base.model_dump(include={"action_id_feature", "reward_range"}) if base else {}
    try:
        return VWPolicyConfig.model_validate(
            {
                **keep,
                "cb_type": "mtr",
                **fields,
                "explorer": explorer,
                "interactions": interactions,
                "extra_args": extra,
            }
        )
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise LearningSettingsError(f"{where}: {first['msg']}") from None


def _is_flag(token: str) -> bool:
    return bool(re.match(r"^-[A-Za-z]", token))


def learning_settings(policy: VWPolicyConfig) -> str:
    """The learning-settings string of a VW policy (the reverse of `parse_learning_settings`)."""
    args = ["--cb_explore_adf"]
    ex = policy.explorer
    if ex.type == "epsilon":
        args += ["--epsilon", _number(str(ex.epsilon))]
    else:
        args += [a if a.startswith("-") else _number(a) for a in ex.vw_args()]
    args += ["--cb_type", policy.cb_type]
    if policy.learning_rate is not None:
        args += ["-l", _number(str(policy.learning_rate))]
    if policy.power_t is not None:
        args += ["--power_t", _number(str(policy.power_t))]
    if policy.l2 is not None:
        args += ["--l2", _number(str(policy.l2))]
    if policy.bits != 18:
        args += ["-b", str(policy.bits)]
    for term in policy.interactions:
        args += ["-q" if len(term) == 2 else "--interactions", term]
    return shlex.join([*args, *policy.extra_args])


# --- service configuration ----------------------------------------------------------------

_MODES = {"online": "Online", "apprentice": "Apprentice", "logging": "LoggingOnly"}
_AGGREGATIONS = {"first": "earliest", "sum": "sum", "max": "max"}
_DURATION = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(text: str) -> float:
    """Seconds of an ISO 8601 duration as Personalizer writes them (`PT10M`, `P1DT2H`, `PT5S`).

    >>> parse_duration("PT10M"), parse_duration("P1DT0.5S")
    (600.0, 86400.5)
    """
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None or text in ("P", "PT") or text.endswith("T"):
        raise ValueError(f"{text!r} is not an ISO 8601 duration like PT10M or PT5S")
    d, h, m, s = (float(match.group(k) or 0) for k in "dhms")
    return ((d * 24 + h) * 60 + m) * 60 + s


def duration(seconds: float) -> str:
    """`parse_duration`'s reverse.

    >>> duration(600), duration(0.5), duration(3725)
    ('PT10M', 'PT0.5S', 'PT1H2M5S')
    """
    whole, frac = divmod(seconds, 1)
    h, rest = divmod(int(whole), 3600)
    m, s = divmod(rest, 60)
    out = "PT" + (f"{h}H" if h else "") + (f"{m}M" if m else "")
    sec = s + frac
    if sec or out == "PT":
        out += f"{_number(str(sec))}S"
    return out


def vw_policies(config: AppConfig) -> list[PolicyConfig]:
    """The app's policies, one per slot (a single-slot app has one)."""
    return list(config.slot_policies().values())


def exploration(policy: PolicyConfig) -> float | None:
    """The explore share of a policy, as Personalizer's explorationPercentage; None if it has none."""
    if policy.kind == "vw" and policy.explorer.type in ("epsilon", "bag"):
        return float(policy.explorer.epsilon)
    if policy.kind == "mab_epsilon":
        return float(policy.epsilon)
    return None


def service_configuration(config: AppConfig) -> dict[str, Any]:
    """Personalizer's ServiceConfiguration of an app."""
    explored = [e for e in map(exploration, vw_policies(config)) if e is not None]
    return {
        "rewardWaitTime": duration(config.reward.wait_seconds),
        "defaultReward": config.reward.default,
        "rewardAggregation": _AGGREGATIONS[config.reward.aggregation],
        "explorationPercentage": explored[0] if explored else 0.0,
        "modelExportFrequency": "PT1M",
        "logMirrorEnabled": False,
        "logRetentionDays": -1,
        "learningMode": _MODES[config.mode],
        "isAutoOptimizationEnabled": False,
    }


def _explored(policy: PolicyConfig, share: float) -> dict[str, Any]:
    if policy.kind == "mab_epsilon":
        return {"kind": "mab_epsilon", "epsilon": share}
    if policy.kind == "vw" and policy.explorer.type == "bag":
        return {
            **policy.model_dump(mode="json", by_alias=True),
            "explorer": {**policy.explorer.model_dump(mode="json"), "epsilon": share},
        }
    if policy.kind == "vw":
        dumped = policy.model_dump(mode="json", by_alias=True)
        return {**dumped, "explorer": {"type": "epsilon", "epsilon": share}}
    raise ValueError(
        f"explorationPercentage: the app's {policy.kind!r} policy has no exploration share; "
        "change it with PATCH /v1/apps/{app}"
    )


def config_patch(config: AppConfig, body: Mapping[str, Any]) -> dict[str, Any]:
    """A merge patch of `config` from a Personalizer ServiceConfiguration (fields it leaves out
    stay as they are; exploration changes only when it differs from what GET reports)."""
    patch: dict[str, Any] = {}
    reward: dict[str, Any] = {}
    if body.get("rewardWaitTime") is not None:
        reward["wait_seconds"] = parse_duration(body["rewardWaitTime"])
    if body.get("defaultReward") is not None:
        reward["default"] = _real(body["defaultReward"], "defaultReward")
    if body.get("rewardAggregation") is not None:
        names = {v: k for k, v in _AGGREGATIONS.items()}
        agg = str(body["rewardAggregation"]).lower()
        if agg not in names:
            raise ValueError(f"rewardAggregation must be one of {sorted(names)}, got {agg!r}")
        reward["aggregation"] = names[agg]
    if reward:
        patch["reward"] = reward
    if body.get("learningMode") is not None:
        modes = {v.lower(): k for k, v in _MODES.items()}
        mode = str(body["learningMode"]).lower()
        if mode not in modes:
            raise ValueError(f"learningMode must be one of {list(_MODES.values())}, got {mode!r}")
        patch["mode"] = modes[mode]
    share = body.get("explorationPercentage")
    if share is not None:
        share = _real(share, "explorationPercentage")
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"explorationPercentage must be between 0 and 1, got {share}")
        if share != service_configuration(config)["explorationPercentage"]:
            if config.slots is None:
                patch["policy"] = _explored(config.policy, share)
            else:
                patch["slots"] = [
                    {"name": s.name, "policy": _explored(s.policy, share)} for s in config.slots
                ]
    return patch


def _real(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return float(value)
