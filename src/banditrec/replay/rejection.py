"""Replay (Li et al. 2011): evaluate a policy that learns as it goes, by rejection sampling.

Walk the log in order; at each row the policy computes its pmf π_t(·|x) (through the
serving engine), and the row is accepted with probability π_t(a|x) · p_min / p(a|x), where a
is the logged action, p its logged probability and p_min ≤ every p in the log. Accepted rows
are distributed exactly as if the policy had chosen the action itself, so the policy learns
from them — and only them — as it would online, and the mean accepted reward estimates its
online value over as many steps as were accepted. With a uniform logging policy this is Li
et al.'s "keep the event when the policy's choice matches the log" (acceptance π_t(a|x)).

About p_min · n rows are accepted: replay needs long logs from a well-exploring policy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..decision.engine import DecisionEngine
from ..decision.features import Interaction
from .dataset import LoggedBandit
from .intervals import DEFAULT_BOOTSTRAP_SAMPLES, IntervalKind
from .progress import progress_bar
from .summary import Estimate, Terms, summarize
from .target import check_slots


@dataclass(frozen=True)
class ReplayResult:
    estimate: Estimate
    accepted: np.ndarray
    """Indices of the accepted rows, in order."""
    n_rows: int
    scale: float
    """p_min: the acceptance scale used."""

    @property
    def n_accepted(self) -> int:
        return int(self.accepted.size)

    def learning_curve(self, rewards: np.ndarray) -> np.ndarray:
        """Running mean reward over the accepted steps (the policy's online learning curve)."""
        r = rewards[self.accepted]
        return np.cumsum(r) / np.arange(1, r.size + 1)


def replay(
    engine: DecisionEngine,
    data: LoggedBandit,
    *,
    rng: np.random.Generator | int | None = 0,
    scale: float | None = None,
    learn: bool = True,
    interval: IntervalKind = "normal",
    alpha: float = 0.05,
    n_boot: int = DEFAULT_BOOTSTRAP_SAMPLES,
    progress: bool | None = None,
) -> ReplayResult:
    """Replay `data` through `engine` (which learns from accepted rows unless learn=False)."""
    check_slots(engine, data)
    p_min = float(data.pscore.min()) if scale is None else scale
    if not 0.0 < p_min <= float(data.pscore.min()):
        raise ValueError(
            f"scale must be in (0, smallest logged probability {data.pscore.min()}], got {scale}"
        )
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    uniforms = generator.random(data.n)
    app_seed = engine.config.seed
    accepted: list[int] = []
    with progress_bar(data.n, "replay", progress, unit=" events") as bar:
        for i in range(data.n):
            x = data.feature_set(i)
            slot = data.slot_name(i)
            a = int(data.action[i])
            prob = float(engine.pmf(x, data.seed(app_seed, i), slot=slot)[a])
            if uniforms[i] < prob * p_min / data.pscore[i]:
                accepted.append(i)
                if learn:
                    engine.learn(Interaction(x, a, prob, float(data.reward[i]), slot))
            bar.update(1)
    rows = np.asarray(accepted, dtype=np.intp)
    if rows.size < 2:
        raise ValueError(
            f"replay accepted {rows.size} of {data.n} rows: too few to estimate; the log needs more "
            "rows or a logging policy that explores more"
        )
    estimate = summarize(
        {"replay": Terms(data.reward[rows])},
        interval=interval,
        alpha=alpha,
        n_boot=n_boot,
        rng=generator,
    )["replay"]
    return ReplayResult(estimate, rows, data.n, p_min)
