"""Multi-slot apps: one decision picks an action for each of several slots, independently.

The app's value is E[Σ_slots reward]. Three ways to estimate it for a target policy:

- independent (the default whenever the log is multi-slot): each slot's rows are weighted
  by that slot's own importance weight and the slot values add up (IPS, DR, SNIPS… of
  estimators.py, grouped by decision). Unbiased when a slot's reward depends on its own
  action only (each slot's joined reward is its own), lowest variance.
- pseudo-inverse (Swaminathan et al. 2017): the decision's total reward weighted by
  Σ_s w_s − (S − 1). Unbiased whenever the total reward is additive over slots, even when
  only the total is observed; the logging policy must draw slots independently, as the
  engine does (one seeded draw per slot).
- slate IPS: the total reward weighted by Π_s w_s. Unbiased for any reward, but its
  variance grows exponentially with the number of slots: a reference point only.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from .estimators import Estimator, OPEData
from .summary import Terms


def _per_decision(d: OPEData) -> tuple[np.ndarray, int]:
    if d.group is None:
        return np.arange(d.n), d.n
    return d.group, int(d.group.max()) + 1 if d.n else 0


class PseudoInverse(Estimator):
    name: ClassVar[str] = "pseudo_inverse"

    def terms(self, d: OPEData) -> Terms:
        group, n_decisions = _per_decision(d)
        weight_sum = np.bincount(group, d.weight, minlength=n_decisions)
        n_slots = np.bincount(group, minlength=n_decisions)
        total_reward = np.bincount(group, d.reward, minlength=n_decisions)
        return Terms((weight_sum - (n_slots - 1)) * total_reward)


class SlateIPS(Estimator):
    name: ClassVar[str] = "slate_ips"

    def terms(self, d: OPEData) -> Terms:
        group, n_decisions = _per_decision(d)
        log_w = np.full(n_decisions, 0.0)
        with np.errstate(divide="ignore"):
            np.add.at(log_w, group, np.log(d.weight))
        total_reward = np.bincount(group, d.reward, minlength=n_decisions)
        return Terms(np.exp(log_w) * total_reward)
