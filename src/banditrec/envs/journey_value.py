"""The engagement journey's reference policies and the true expected return of any policy.

The simulator's ground truth for the sequential case (envs/journey.py holds the journey
itself): `GreedyPolicy` (the myopic oracle) and `RestWhenFatigued` (a hand rule) are the
baselines an RL policy trained on the decide → log → join → learn loop's logs is measured
against, and `monte_carlo_value` rolls out thousands of journeys to give any policy's
expected return with a confidence interval (vectorized over users for a policy that can
act for many at once).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
from tqdm.auto import tqdm

from .journey import FATIGUE, EngagementJourneyEnv, JourneyDynamics


@runtime_checkable
class BatchPolicy(Protocol):
    """A journey policy that can also act for many users at once (fast Monte Carlo)."""

    def __call__(self, obs: np.ndarray, info: dict[str, Any]) -> int: ...

    def act_batch(self, obs: np.ndarray, expected_rewards: np.ndarray) -> np.ndarray: ...


class GreedyPolicy:
    """Myopic: the action with the best immediate expected reward."""

    def __call__(self, obs: np.ndarray, info: dict[str, Any]) -> int:
        return int(np.argmax(info["expected_rewards"]))

    def act_batch(self, obs: np.ndarray, expected_rewards: np.ndarray) -> np.ndarray:
        return np.argmax(expected_rewards, axis=1)


@dataclass(frozen=True)
class RestWhenFatigued:
    """Greedy, except that it rests whenever the user's fatigue is above `threshold`."""

    threshold: float = 1.0

    def __call__(self, obs: np.ndarray, info: dict[str, Any]) -> int:
        if obs[FATIGUE] > self.threshold:
            return 0
        return int(np.argmax(info["expected_rewards"]))

    def act_batch(self, obs: np.ndarray, expected_rewards: np.ndarray) -> np.ndarray:
        return np.where(obs[:, FATIGUE] > self.threshold, 0, np.argmax(expected_rewards, axis=1))


@dataclass(frozen=True)
class MonteCarloValue:
    """Estimated expected return of a policy, with a normal-approximation confidence interval."""

    mean: float
    low: float
    high: float
    std_error: float
    episodes: int
    returns: np.ndarray = field(repr=False)
    confidence: float = 0.95


def monte_carlo_value(
    policy: Callable[[np.ndarray, dict[str, Any]], int] | BatchPolicy,
    episodes: int = 1000,
    seed: int = 0,
    *,
    discount: float = 1.0,
    confidence: float = 0.95,
    env_kwargs: dict[str, Any] | None = None,
    batched: bool | None = None,
    progress: bool = False,
) -> MonteCarloValue:
    """The true expected return of `policy`, by rolling out `episodes` journeys.

    The return of an episode is Σ_t γ^t q(s_t, a_t), the *expected* immediate reward of
    each action taken along the sampled trajectory: it has the same expectation as the
    sum of sampled rewards (by the tower rule) and a smaller variance.

    A `policy(obs, info) -> action` is run through the Gymnasium env, episode by episode.
    A policy that also has `act_batch(obs, expected_rewards) -> actions` is, by default,
    run for all episodes at once in numpy (same dynamics, far faster).
    """
    if episodes < 2:
        raise ValueError("need at least 2 episodes for a confidence interval")
    if not 0.0 < discount <= 1.0:
        raise ValueError(f"discount must be in (0, 1], got {discount}")
    use_batch = isinstance(policy, BatchPolicy) if batched is None else batched
    if use_batch and not isinstance(policy, BatchPolicy):
        raise ValueError("batched=True needs a policy with act_batch(obs, expected_rewards)")
    env = EngagementJourneyEnv(**(env_kwargs or {}))
    if use_batch:
        returns = _batched_returns(env.dynamics, policy, episodes, seed, discount)  # type: ignore[arg-type]
    else:
        returns = _episode_returns(env, policy, episodes, seed, discount, progress)
    # scipy comes with scikit-learn; imported here because it is slow to load
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + confidence / 2.0))
    mean = float(returns.mean())
    se = float(returns.std(ddof=1) / math.sqrt(episodes))
    return MonteCarloValue(mean, mean - z * se, mean + z * se, se, episodes, returns, confidence)


def _episode_returns(
    env: EngagementJourneyEnv,
    policy: Callable[[np.ndarray, dict[str, Any]], int],
    episodes: int,
    seed: int,
    discount: float,
    progress: bool,
) -> np.ndarray:
    returns = np.zeros(episodes)
    obs, info = env.reset(seed=seed)
    for e in tqdm(range(episodes), desc="journeys", disable=not progress):
        if e:
            obs, info = env.reset()
        weight, total, done = 1.0, 0.0, False
        while not done:
            obs, _, terminated, truncated, info = env.step(policy(obs, info))
            total += weight * info["taken"]["expected_reward"]
            weight *= discount
            done = terminated or truncated
        returns[e] = total
    return returns


def _batched_returns(
    dynamics: JourneyDynamics, policy: BatchPolicy, episodes: int, seed: int, discount: float
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    s = dynamics.new_users(episodes, rng)
    returns = np.zeros(episodes)
    weight = 1.0
    for _ in range(dynamics.params.horizon):
        if not s.alive.any():
            break
        live = s.alive.copy()
        actions = np.asarray(
            policy.act_batch(dynamics.observations(s), dynamics.expected_rewards(s)), dtype=np.int64
        )
        _, expected, _ = dynamics.step(s, actions, rng)
        returns += weight * np.where(live, expected, 0.0)
        weight *= discount
    return returns
