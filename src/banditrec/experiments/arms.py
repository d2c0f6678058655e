"""The policies of an experiment's `policy` arms: one model per arm, beside the app's.

A `policy` arm serves its own policy config (another explorer, other interactions, another
learner). Its model learns from **every** arm's joined traffic, not only its own slice:
a contextual-bandit learner trains off-policy from any logged decision with its
propensity, so each arm's model sees the same data the app's own model does. The online
comparison of the arms then compares the configs on equal data, and an arm of small weight
learns as fast as the app's model instead of starving on its slice (and its slice's
feedback loop). The models are published with the app's, under `arm:<name>`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from ..config import AppConfig
from ..policies import Policy, load_policy, make_policy
from ..policy_config import PolicyConfig

log = logging.getLogger("banditrec.experiments")

ARM_MODEL_PREFIX = "arm:"  # slot names cannot hold ':', so these keys never clash


def arm_configs(config: AppConfig) -> dict[str, PolicyConfig]:
    """Arm name → policy config of the app's `policy` arms (none without an experiment)."""
    exp = config.experiment
    if exp is None:
        return {}
    return {a.name: a.policy for a in exp.arms if a.kind == "policy" and a.policy is not None}


def arm_policies(
    config: AppConfig,
    models: Mapping[str, bytes] | None = None,
    current: Mapping[str, Policy] | None = None,
    current_config: AppConfig | None = None,
    same_kind: Callable[[PolicyConfig, PolicyConfig], bool] | None = None,
) -> dict[str, Policy]:
    """The `policy` arms' policies: from published `models` when there, else the `current`
    policy of the arm (reconfigured when `same_kind` says its model still fits), else new."""
    before = arm_configs(current_config) if current_config is not None else {}
    out: dict[str, Policy] = {}
    for name, cfg in arm_configs(config).items():
        data = (models or {}).get(ARM_MODEL_PREFIX + name)
        if data is not None:
            try:
                out[name] = load_policy(cfg, data)
                continue
            except Exception as exc:  # bytes of another kind: keep what serves, or start anew
                log.warning("arm %r: published model not loadable (%s)", name, exc)
        mine = (current or {}).get(name)
        if mine is not None and (
            current_config is None
            or (name in before and same_kind is not None and same_kind(before[name], cfg))
        ):
            out[name] = mine if current_config is None else mine.reconfigured(cfg)
        else:
            out[name] = make_policy(cfg)
    return out


def arm_models(policies: Mapping[str, Policy]) -> dict[str, bytes]:
    """The arms' models as published beside the app's."""
    return {ARM_MODEL_PREFIX + name: p.to_bytes() for name, p in policies.items()}
