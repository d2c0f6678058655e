"""Rewards ↔ the costs VW learns from: the one place that maps one to the other.

banditrec speaks of rewards (higher is better); Vowpal Wabbit's contextual-bandit labels,
and so the `_label_cost` of a DSJson record, are costs (lower is better). A policy with a
reward range [low, high] learns

    cost = (high − reward) / (high − low)

so the best reward is cost 0 and the worst cost 1: a 0/1 reward is cost 1/0. VW's
regressors start at 0, the best cost any action can have, so an action not yet tried
looks as good as the best one seen (optimism in the face of uncertainty). [0, 1] is also
the cost range VW's SquareCB and RegCB assume by default, and the Contextual Bandit
Bake-off's convention. `bench/bench_quality.py` compared it with cost = −reward: better
on the scikit-learn datasets with many classes (digits, iris), even over all its problems
(BENCHMARKS.md).

A joined record keeps the raw reward under banditrec's key, so reading a reward back
never needs the range; a plain VW DSJson record (no banditrec key) is read with VW's
usual convention, reward = −cost.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CostScale:
    """The affine map between a policy's rewards in [low, high] and VW costs in [0, 1].

    >>> scale = CostScale(0.0, 1.0)
    >>> scale.cost(1.0), scale.cost(0.0)
    (0.0, 1.0)
    >>> CostScale(-0.1, 1.0).cost(-0.1)
    1.0
    >>> scale.reward(scale.cost(0.25))
    0.25
    """

    low: float = 0.0
    high: float = 1.0

    def cost(self, reward: float) -> float:
        return (self.high - reward) / (self.high - self.low)

    def reward(self, cost: float) -> float:
        return self.high - cost * (self.high - self.low)


UNIT = CostScale()


def logged_reward(cost: float, reward: float | None) -> float:
    """The reward of a joined record: banditrec's own (`reward`, from its key) when there,
    else −cost, VW's usual convention for a plain DSJson log.

    >>> logged_reward(0.0, 1.0), logged_reward(-1.0, None)
    (1.0, 1.0)
    """
    return -cost if reward is None else reward
