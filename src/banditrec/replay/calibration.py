"""Reliability of a reward model: equal-mass bins of its predictions against the rewards
observed in them, and their expected calibration error (ECE, Naeini et al. 2015)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Calibration:
    """Reliability of q̂ on the logged actions, in equal-mass bins of the prediction.

    ECE = Σ_b (n_b / n) |mean(r)_b − mean(q̂)_b| (Naeini et al. 2015), in reward units;
    `relative_ece` divides it by the mean reward, so rare rewards are judged on their scale.

    >>> c = calibrate(np.array([0.1, 0.1, 0.9, 0.9]), np.array([0.0, 0.0, 1.0, 1.0]), 2)
    >>> round(c.ece, 3), c.counts
    (0.1, [2, 2])
    """

    ece: float
    relative_ece: float
    predicted: list[float]
    observed: list[float]
    counts: list[int]

    def to_dict(self) -> dict[str, float | list]:
        return {
            "ece": self.ece,
            "relative_ece": self.relative_ece,
            "bins": [
                {"predicted": p, "observed": o, "n": c}
                for p, o, c in zip(self.predicted, self.observed, self.counts, strict=True)
            ],
        }


def calibrate(predicted: np.ndarray, reward: np.ndarray, n_bins: int = 10) -> Calibration:
    """`Calibration` of predictions against rewards, in `n_bins` equal-mass bins."""
    if predicted.size == 0:
        raise ValueError("calibration needs at least one row")
    order = np.argsort(predicted, kind="stable")
    bins = [b for b in np.array_split(order, min(n_bins, predicted.size)) if b.size]
    pred = [float(predicted[b].mean()) for b in bins]
    obs = [float(reward[b].mean()) for b in bins]
    counts = [int(b.size) for b in bins]
    ece = float(sum(c * abs(o - p) for p, o, c in zip(pred, obs, counts, strict=True))) / sum(
        counts
    )
    scale = abs(float(reward.mean()))
    return Calibration(ece, ece / scale if scale > 0 else float("inf"), pred, obs, counts)
