"""A tiny contextual problem with a known best action per user segment, for learner tests."""

from __future__ import annotations

import numpy as np

from banditrec import DecisionEngine, DecisionRequest

N_SEGMENTS = 4
ACTIONS = [f"item-{i}" for i in range(5)]
BEST = {0: 0, 1: 3, 2: 1, 3: 4}
P_BEST, P_OTHER = 0.8, 0.2
UNIFORM_VALUE = (P_BEST + (len(ACTIONS) - 1) * P_OTHER) / len(ACTIONS)


def request(i: int, segment: int, *, contextual: bool = True) -> DecisionRequest:
    context = {"user": {"segment": f"s{segment}"}} if contextual else {}
    actions = [{"id": a, "features": {"item": {"kind": a}}} for a in ACTIONS]
    return DecisionRequest(event_id=f"ev-{i}", context=context, actions=actions)


def run_online(
    engine: DecisionEngine, steps: int, *, contextual: bool = True, seed: int = 0
) -> np.ndarray:
    """Decide → Bernoulli reward → learn from the logged record; returns the rewards."""
    from banditrec.decision.record import set_reward

    rng = np.random.default_rng(seed)
    rewards = np.zeros(steps)
    for i in range(steps):
        segment = int(rng.integers(N_SEGMENTS)) if contextual else 0
        _, (record,) = engine.decide_logged(request(i, segment, contextual=contextual))
        chosen = ACTIONS[record["_labelIndex"]]
        p = P_BEST if ACTIONS.index(chosen) == BEST[segment] else P_OTHER
        rewards[i] = float(rng.random() < p)
        engine.learn(set_reward(record, rewards[i]))
    return rewards
