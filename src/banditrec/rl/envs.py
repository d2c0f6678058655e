"""The envs RL trains in: Gymnasium ids, their feature and action names, the training reward.

Any registered Gymnasium env with a flat `Box` observation and a `Discrete` action space
works; banditrec's own (`banditrec/EngagementJourney-v0`) are registered on import.
"""

from __future__ import annotations

import sys
from typing import Any, Literal

import gymnasium as gym
import numpy as np

RewardSignal = Literal["expected", "sampled"]


class ExpectedReward(gym.Wrapper):
    """Trains on the expected reward of each step (the simulator knows it) instead of a draw.

    The expected return is unchanged (tower rule), its variance much smaller, so the
    learner needs fewer samples for the same policy. Only for envs whose `info["taken"]`
    reports an `expected_reward`, as banditrec's do.
    """

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, _, terminated, truncated, info = self.env.step(action)
        taken = info.get("taken")
        if not isinstance(taken, dict) or "expected_reward" not in taken:
            raise ValueError(
                "reward='expected' needs an env whose info['taken'] has 'expected_reward'; "
                "train with reward='sampled' instead"
            )
        return obs, float(taken["expected_reward"]), terminated, truncated, info


def make_env(
    env_id: str, env_kwargs: dict[str, Any] | None = None, reward: RewardSignal = "sampled"
) -> gym.Env:
    import banditrec.envs  # noqa: F401  (registers banditrec/… ids)

    try:
        env = gym.make(env_id, **(env_kwargs or {}))
    except gym.error.Error as exc:
        raise ValueError(f"cannot make env {env_id!r}: {exc}") from None
    check_spaces(env, env_id)
    return ExpectedReward(env) if reward == "expected" else env


def check_spaces(env: gym.Env, env_id: str) -> None:
    if (
        not isinstance(env.observation_space, gym.spaces.Box)
        or len(env.observation_space.shape) != 1
    ):
        raise ValueError(
            f"{env_id}: RL policies need a flat Box observation, got {env.observation_space}"
        )
    if not isinstance(env.action_space, gym.spaces.Discrete):
        raise ValueError(
            f"{env_id}: RL policies need a Discrete action space, got {env.action_space}"
        )


def feature_names(env: gym.Env) -> list[str]:
    """Names of the observation fields: the env's `observation_names`, its module's
    `OBS_FIELDS`, or x0, x1, …"""
    inner = env.unwrapped
    size = int(np.prod(env.observation_space.shape))
    names = getattr(inner, "observation_names", None)
    if names is None:
        names = getattr(sys.modules.get(type(inner).__module__), "OBS_FIELDS", None)
    if names is not None and len(names) == size:
        return [str(n) for n in names]
    return [f"x{i}" for i in range(size)]


def action_ids(env: gym.Env) -> list[str]:
    """Names of the actions: the env's `action_ids`, or "0", "1", …"""
    n = int(env.action_space.n)
    ids = getattr(env.unwrapped, "action_ids", None)
    if ids is not None and len(ids) == n:
        return [str(a) for a in ids]
    return [str(i) for i in range(n)]
