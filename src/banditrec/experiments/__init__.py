"""Experiments per app: arms, assignment by unit id, SRM check, guardrails (docs/experiments.md)."""

from .assign import Assignment, assign, unit_point
from .config import ArmConfig, ExperimentConfig, GuardrailConfig

__all__ = [
    "ArmConfig",
    "Assignment",
    "ExperimentConfig",
    "GuardrailConfig",
    "assign",
    "unit_point",
]
