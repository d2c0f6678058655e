"""Which arm a unit is in: a stable hash of (experiment, unit id) against the weights.

The assignment is deterministic per unit: a unit stays in its arm across requests (while
the weights stay), so a decision's logged probability is the probability of its action
*within the arm*; the arm's share of traffic (its weight over the total) is logged beside
it as `arm_probability`. Off-policy estimators that condition on the arm use `p` as is;
one that treats the arm draw as part of the policy multiplies the two.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .config import ArmConfig, ExperimentConfig


@dataclass(frozen=True, slots=True)
class Assignment:
    arm: ArmConfig
    probability: float  # the arm's share of units: weight / Σ weights


def unit_point(experiment: str, unit_id: str) -> float:
    """A number in [0, 1) fixed by (experiment, unit): 64 bits of BLAKE2b.

    >>> unit_point("exp", "user-1") == unit_point("exp", "user-1")
    True
    """
    digest = hashlib.blake2b(f"{experiment}\x1f{unit_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def assign(experiment: ExperimentConfig, unit_id: str) -> Assignment:
    """The unit's arm: the weights cut [0, 1) into consecutive intervals, in arm order."""
    total = sum(a.weight for a in experiment.arms)
    x = unit_point(experiment.name, unit_id) * total
    edge = 0.0
    chosen = experiment.arms[-1]
    for arm in experiment.arms:
        edge += arm.weight
        if arm.weight > 0 and x < edge:
            chosen = arm
            break
    else:  # rounding at the top edge: the last arm with weight
        chosen = [a for a in experiment.arms if a.weight > 0][-1]
    return Assignment(chosen, chosen.weight / total)
