"""Replay (rejection sampling) of frozen and learning policies on simulator logs."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

import banditrec.envs  # noqa: F401  (registers banditrec/… envs)
from banditrec.decision.engine import DecisionEngine
from banditrec.replay import evaluate, replay, simulate_log, target_pmfs

LEARNER = {
    "policy": {
        "kind": "vw",
        "explorer": {"type": "epsilon", "epsilon": 0.05},
        "interactions": ["xl"],
    }
}


@pytest.fixture(scope="module")
def wine():
    env = gym.make("banditrec/Wine-v0")
    env.reset(seed=0)
    return env


@pytest.fixture(scope="module")
def uniform_log(wine):
    return simulate_log(
        wine, DecisionEngine.from_config({"policy": {"kind": "uniform"}}), 15_000, rng=4
    )


@pytest.fixture(scope="module")
def frozen_target(wine):
    engine = DecisionEngine.from_config(LEARNER)
    simulate_log(wine, engine, 300, rng=9, learn=True, batch_size=20)
    return engine


def test_frozen_policy_on_a_uniform_log(uniform_log, frozen_target):
    pi_e = target_pmfs(frozen_target, uniform_log)
    truth = uniform_log.true_value(pi_e)
    result = replay(frozen_target, uniform_log, learn=False, rng=1)
    assert result.estimate.ci_low <= truth <= result.estimate.ci_high
    # Li et al.: with a uniform log a row is kept with probability π(a|x)
    expected_accepted = pi_e[np.arange(uniform_log.n), uniform_log.action].sum()
    assert abs(result.n_accepted - expected_accepted) < 4 * math.sqrt(expected_accepted)
    assert result.scale == pytest.approx(1 / 3)


def test_frozen_policy_on_a_non_uniform_log(wine, frozen_target):
    logger = DecisionEngine.from_config(
        {
            "min_probability": 0.05,
            **{"policy": {**LEARNER["policy"], "explorer": {"type": "epsilon", "epsilon": 0.4}}},
        }
    )
    simulate_log(wine, logger, 100, rng=2, learn=True, batch_size=20)
    log = simulate_log(wine, logger, 20_000, rng=3)
    assert log.pscore.min() < 0.3  # the logging policy is far from uniform
    truth = log.true_value(target_pmfs(frozen_target, log))
    result = replay(frozen_target, log, learn=False, rng=2)
    assert abs(result.estimate.value - truth) <= 3.5 * result.estimate.stderr
    assert result.n_accepted == pytest.approx(log.pscore.min() * log.n, rel=0.15)


def test_learning_policy_replay_matches_its_on_policy_run(wine, uniform_log):
    result = replay(DecisionEngine.from_config(LEARNER), uniform_log, rng=0)
    steps = result.n_accepted
    assert steps > 3000
    run = simulate_log(
        wine, DecisionEngine.from_config(LEARNER), steps, rng=11, learn=True, batch_size=1
    )
    online = evaluate(run.ope_data(run.pi_b), ["on_policy"])["on_policy"]
    gap = abs(result.estimate.value - online.value)
    assert gap <= 3.5 * math.hypot(result.estimate.stderr, online.stderr), (result.estimate, online)
    curve = result.learning_curve(uniform_log.reward)
    assert curve.size == steps
    # it learns: later accepted steps earn more than the first ones
    accepted_rewards = uniform_log.reward[result.accepted]
    assert accepted_rewards[-steps // 3 :].mean() > accepted_rewards[:200].mean()


def test_replay_refuses_a_scale_above_the_smallest_propensity(uniform_log, frozen_target):
    with pytest.raises(ValueError, match="scale must be in"):
        replay(frozen_target, uniform_log.take(np.arange(50)), scale=0.5)
