"""How much an off-policy estimate can be trusted: a data-quality report for every estimate.

From the importance weights w_i = π(a_i|x_i) / p_i of the logged rows:

- effective sample size ESS = (Σ w)² / Σ w² (Kish 1965): how many on-policy rows the
  weighted log is worth. An estimate from ESS ≈ 4 rests on a handful of rows whatever n is.
- the largest weight and its share of Σ w: one row carrying a tenth of the weight decides
  the estimate alone.
- the mean weight, ≈ 1 whenever the logging policy covers the target's actions and the
  propensities are logged right (E_logger[w] = 1); far from 1 means either is wrong.
- support gaps: actions the target plays that the logger never showed. No importance
  weight can see them, so IPS / SNIPS are biased by their whole mass there and only a
  reward model (DM, the DR family) can speak for them, extrapolating.

`warnings` says, in words, each way the data is too weak to trust (thresholds are the
module constants below); `trustworthy` is True when there are none.

>>> r = weight_quality(np.array([1.0] * 999 + [5000.0]))
>>> r.trustworthy, round(r.ess, 1)
(False, 1.4)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .dataset import LoggedBandit
    from .estimators import OPEData

MIN_ESS = 30.0
"""Below this many effective rows, an interval's normal approximation is not to be trusted."""
MIN_ESS_FRACTION = 0.01
"""ESS below 1% of the rows: the target is far from the logging policy."""
MAX_WEIGHT_SHARE = 0.1
"""One row holding over 10% of Σ w decides the estimate alone."""
MAX_GAP_MASS = 0.05
"""Over 5% of the target's probability on actions never logged biases IPS-type estimates."""


@dataclass(frozen=True)
class QualityReport:
    """See the module doc; `units` names what was weighted (rows, trajectories)."""

    n: int
    ess: float
    max_weight: float
    max_weight_share: float
    mean_weight: float
    gap_actions: list[str] = field(default_factory=list)
    """Action ids the target gives probability to that the log never shows as chosen."""
    gap_mass: float = 0.0
    """Mean target probability per row on those actions and on actions a row's logger could
    not choose (pmf 0)."""
    warnings: list[str] = field(default_factory=list)
    units: str = "rows"

    @property
    def trustworthy(self) -> bool:
        return not self.warnings

    @property
    def ess_fraction(self) -> float:
        return self.ess / self.n if self.n else 0.0

    def text(self) -> str:
        """One line of numbers, then one WARNING line per problem."""
        gaps = ""
        if self.gap_actions or self.gap_mass > 0:
            shown = ", ".join(self.gap_actions[:5]) + (" …" if len(self.gap_actions) > 5 else "")
            gaps = f"; support gaps: {self.gap_mass:.1%} of the target's probability" + (
                f" (never logged: {shown})" if shown else ""
            )
        line = (
            f"data quality: effective sample size {self.ess:,.0f} of {self.n:,} {self.units} "
            f"({self.ess_fraction:.1%}), largest weight {self.max_weight:.3g} "
            f"({self.max_weight_share:.1%} of the total), mean weight {self.mean_weight:.3f}{gaps}"
        )
        return "\n".join([line, *(f"WARNING: {w}" for w in self.warnings)])

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ess_fraction": self.ess_fraction, "trustworthy": self.trustworthy}


def weight_quality(
    weight: np.ndarray,
    *,
    gap_actions: list[str] | None = None,
    gap_mass: float = 0.0,
    units: str = "rows",
) -> QualityReport:
    """The report from importance weights (and support gaps found by the caller)."""
    w = np.asarray(weight, dtype=np.float64)
    n = int(w.size)
    total = float(w.sum()) if n else 0.0
    ess = total * total / float((w * w).sum()) if total > 0 else 0.0
    max_w = float(w.max()) if n else math.nan
    share = max_w / total if total > 0 else math.nan
    mean_w = float(w.mean()) if n else math.nan
    warnings = []
    if n and ess < max(MIN_ESS, MIN_ESS_FRACTION * n):
        warnings.append(
            f"too weak to trust: the {n:,} {units} are worth about {ess:,.0f} on-policy {units} "
            f"(effective sample size {ess / n:.1%} of them); the target is far from the "
            "logging policy — log with more exploration or evaluate a closer target"
        )
    if n and share > MAX_WEIGHT_SHARE:
        warnings.append(
            f"one logged {units[:-1]} carries {share:.0%} of the total importance weight "
            f"(weight {max_w:.3g}): the estimate hinges on it"
        )
    stderr = float(w.std(ddof=1)) / math.sqrt(n) if n > 1 else math.inf
    if n > 1 and abs(mean_w - 1.0) > 0.1 + 3.0 * stderr:
        warnings.append(
            f"the mean importance weight is {mean_w:.3f}, not ≈ 1: propensities may be logged "
            "wrong, or the target plays actions the logger could not choose"
        )
    if gap_mass > MAX_GAP_MASS:
        warnings.append(
            f"the target puts {gap_mass:.1%} of its probability on actions the logger never "
            "showed: IPS and SNIPS cannot see them (biased low); only a reward model (DM, DR) "
            "speaks for them, by extrapolation"
        )
    return QualityReport(
        n=n,
        ess=ess,
        max_weight=max_w,
        max_weight_share=share,
        mean_weight=mean_w,
        gap_actions=list(gap_actions or []),
        gap_mass=float(gap_mass),
        warnings=warnings,
        units=units,
    )


def quality_report(ope: OPEData, data: LoggedBandit | None = None) -> QualityReport:
    """The report of one target policy's estimate (`ope = data.ope_data(pi_e, …)`); with the
    log, also its support gaps."""
    if data is None:
        return weight_quality(ope.weight)
    gap_actions, gap_mass = support_gaps(data, ope.pi_e)
    return weight_quality(ope.weight, gap_actions=gap_actions, gap_mass=gap_mass)


def support_gaps(data: LoggedBandit, pi_e: np.ndarray) -> tuple[list[str], float]:
    """Action ids the target plays but the log never shows chosen, and the target's mean
    per-row probability on them or on actions a row's logger gave probability 0."""
    vocab, index = data.action_vocabulary()
    rows = np.arange(data.n)
    logged = np.zeros(len(vocab), dtype=bool)
    logged[index[rows, data.action]] = True
    played = np.zeros(len(vocab))
    real = index >= 0
    np.add.at(played, index[real], pi_e[real])
    gap_ids = np.flatnonzero((played > 0) & ~logged)
    unseen = real & ~logged[np.maximum(index, 0)]
    outside = real & (data.pi_b <= 0.0)
    mass = float(np.where(unseen | outside, pi_e, 0.0).sum()) / max(data.n, 1)
    return [vocab[g] for g in gap_ids], mass
