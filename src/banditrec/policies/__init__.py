"""Policies behind one interface; `make_policy` / `load_policy` build them from config."""

from __future__ import annotations

from ..policy_config import PolicyConfig
from .base import Policy
from .baseline import FixedPolicy, UniformPolicy
from .linear import LinTSPolicy, LinUCBPolicy
from .mab import UCB1, EpsilonGreedyMAB, Thompson
from .rl import RLPolicy  # torch and RLlib load only when a module is loaded
from .vw import VWPolicy
from .vw_ccb import VWCCBPolicy

POLICY_CLASSES: dict[str, type[Policy]] = {
    cls.kind: cls
    for cls in (
        VWPolicy,
        VWCCBPolicy,
        LinUCBPolicy,
        LinTSPolicy,
        EpsilonGreedyMAB,
        UCB1,
        Thompson,
        UniformPolicy,
        FixedPolicy,
        RLPolicy,
    )
}


def make_policy(config: PolicyConfig) -> Policy:
    """A fresh, untrained policy."""
    return POLICY_CLASSES[config.kind](config)


def load_policy(config: PolicyConfig, data: bytes) -> Policy:
    """A policy from model bytes saved by `Policy.to_bytes` (possibly under other settings)."""
    return POLICY_CLASSES[config.kind].from_bytes(config, data)


__all__ = [
    "POLICY_CLASSES",
    "UCB1",
    "EpsilonGreedyMAB",
    "FixedPolicy",
    "LinTSPolicy",
    "LinUCBPolicy",
    "Policy",
    "RLPolicy",
    "Thompson",
    "UniformPolicy",
    "VWCCBPolicy",
    "VWPolicy",
    "load_policy",
    "make_policy",
]
