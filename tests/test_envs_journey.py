"""The engagement journey: the sequential case where the myopic policy loses."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from banditrec.envs import EngagementJourneyEnv, GreedyPolicy, RestWhenFatigued, monte_carlo_value
from banditrec.envs.journey import ACTION_IDS, FATIGUE, OBS_FIELDS


def test_observation_is_a_flat_box_and_actions_are_discrete_with_rest_first():
    env = gym.make("banditrec/EngagementJourney-v0")
    obs, info = env.reset(seed=0)
    assert isinstance(env.observation_space, gym.spaces.Box)
    assert obs.shape == (len(OBS_FIELDS),) and obs.dtype == np.float32
    assert isinstance(env.action_space, gym.spaces.Discrete) and env.action_space.n == len(
        ACTION_IDS
    )
    assert [a["id"] for a in info["actions"]] == list(ACTION_IDS) and ACTION_IDS[0] == "rest"
    assert info["expected_rewards"][0] == 0.0
    assert set(info["context"]) == {"user", "journey"}


def test_episodes_end_by_churn_or_at_the_horizon_and_step_after_the_end_is_refused():
    env = EngagementJourneyEnv(horizon=10)
    env.reset(seed=1)
    done, steps = False, 0
    while not done:
        _, _, terminated, truncated, info = env.step(0)
        done = terminated or truncated
        steps += 1
    assert steps <= 10 and (truncated or info["taken"]["churned"])
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    env.reset()
    with pytest.raises(ValueError, match="action index"):
        env.step(len(ACTION_IDS))


def test_sending_builds_fatigue_and_resting_lets_it_decay():
    env = EngagementJourneyEnv()
    obs, _ = env.reset(seed=3)
    for _ in range(3):
        obs, *_ = env.step(ACTION_IDS.index("sms_offer_morning"))
    tired = obs[FATIGUE]
    assert tired > 2.0
    for _ in range(3):
        obs, *_ = env.step(0)
    assert obs[FATIGUE] < 0.5 * tired


def test_rest_when_fatigued_beats_the_myopic_greedy_policy():
    greedy = monte_carlo_value(GreedyPolicy(), episodes=4000, seed=0)
    patient = monte_carlo_value(RestWhenFatigued(threshold=1.0), episodes=4000, seed=0)
    assert patient.low > greedy.high  # non-overlapping 95% intervals
    assert patient.mean > 1.3 * greedy.mean
    # and the greedy policy really is myopically best: it has the larger first-day reward
    env = EngagementJourneyEnv()
    _, info = env.reset(seed=0)
    assert GreedyPolicy()(np.zeros(len(OBS_FIELDS)), info) == int(
        np.argmax(info["expected_rewards"])
    )


def test_batched_and_per_step_monte_carlo_agree():
    policy = RestWhenFatigued(threshold=1.0)
    fast = monte_carlo_value(policy, episodes=3000, seed=1)
    slow = monte_carlo_value(policy, episodes=200, seed=2, batched=False)
    assert slow.episodes == 200 and len(slow.returns) == 200
    # two independent estimates of one value: their difference is within ~3 joint standard errors
    assert abs(fast.mean - slow.mean) < 3 * np.hypot(fast.std_error, slow.std_error)
    assert slow.low < slow.mean < slow.high


def test_monte_carlo_accepts_a_plain_callable_and_a_discount():
    def always_rest(obs, info):
        return 0

    value = monte_carlo_value(always_rest, episodes=20, seed=0)
    assert value.mean == 0.0
    discounted = monte_carlo_value(GreedyPolicy(), episodes=500, seed=0, discount=0.9)
    undiscounted = monte_carlo_value(GreedyPolicy(), episodes=500, seed=0)
    assert 0 < discounted.mean < undiscounted.mean
    with pytest.raises(ValueError, match="act_batch"):
        monte_carlo_value(always_rest, episodes=10, batched=True)
