"""True values in the simulator: any engine (RL or bandit app) as a journey policy.

`EnginePolicy` drives an env with a `DecisionEngine`, exactly as serving decides: the step's
request is built (the journey state under the state namespace for an RL app, the env's
bandit context otherwise), `engine.pmf` gives the served pmf (policy, mode, floor) and the
action is drawn from it. For an RL app it also acts for thousands of users at once
(`act_batch`), with the same pmf computed in one forward pass, which is what makes Monte
Carlo values of RL policies cheap.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..config import AppConfig
from ..decision import pmf as pmf_ops
from ..decision.engine import DecisionEngine
from ..decision.features import FeatureSet
from ..decision.journey import journey_context
from ..decision.sampling import draw
from ..policies.rl import RLPolicy
from ..policy_config import RLPolicyConfig
from .envs import make_env


def rl_engine(
    module: bytes | str,
    *,
    temperature: float = 1.0,
    greedy: bool = False,
    min_probability: float = 0.0,
    name: str = "rl",
    seed: int = 0,
) -> DecisionEngine:
    """An RL app's engine from module bytes or a module file path."""
    policy_cfg = RLPolicyConfig(
        module_path=module if isinstance(module, str) else None,
        temperature=temperature,
        greedy=greedy,
    )
    config = AppConfig(name=name, policy=policy_cfg, min_probability=min_probability, seed=seed)
    if isinstance(module, str):
        return DecisionEngine(config)
    return DecisionEngine(config, {None: RLPolicy.from_bytes(policy_cfg, module)})


def served_rl_pmfs(engine: DecisionEngine, obs: np.ndarray, offered: list[str]) -> np.ndarray:
    """(n, K) the RL app's served pmf over `offered` for (n, d) observations, in one pass.

    The same steps as `DecisionEngine.pmf` (the policy's pmf over the offered actions,
    normalized, then the app's floor), batched.
    """
    policy = engine.policy
    cfg = engine.config
    if not isinstance(policy, RLPolicy) or cfg.mode != "online" or cfg.slots is not None:
        raise ValueError("batched pmfs need a single-slot RL app in online mode")
    if policy.module is None:
        base = np.full((len(obs), len(offered)), 1.0 / len(offered))
    else:
        base = policy.distribution(np.asarray(obs, dtype=np.float32))[:, policy.columns(offered)]
    return np.stack([pmf_ops.apply_floor(pmf_ops.normalize(p), cfg.min_probability) for p in base])


class EnginePolicy:
    """A journey policy (`policy(obs, info) -> action`) backed by a decision engine."""

    def __init__(self, engine: DecisionEngine, feature_names: list[str], seed: int = 0) -> None:
        self.engine = engine
        self.feature_names = list(feature_names)
        self.is_rl = isinstance(engine.policy, RLPolicy)
        self._rng = np.random.default_rng(seed)
        self._action_ids: list[str] | None = None

    def features(self, obs: np.ndarray, info: dict[str, Any]) -> FeatureSet:
        actions = [(a["id"], a.get("features", {})) for a in info["actions"]]
        if self.is_rl:
            namespace = self.engine.config.policy.state_namespace  # type: ignore[union-attr]
            context = journey_context(obs, self.feature_names, "sim", 0, namespace=namespace)
        else:
            context = info["context"]
        return FeatureSet.build(context, actions)

    def __call__(self, obs: np.ndarray, info: dict[str, Any]) -> int:
        if self._action_ids is None:
            self._action_ids = [a["id"] for a in info["actions"]]
        seed = int(self._rng.integers(0, 2**64, dtype=np.uint64))  # draw() reads 64 bits
        return draw(self.engine.pmf(self.features(obs, info), seed), seed)

    def act_batch(self, obs: np.ndarray, expected_rewards: np.ndarray) -> np.ndarray:
        if not self.is_rl:
            raise ValueError("only RL apps act in batches")
        offered = self._action_ids or self.engine.policy.action_ids  # type: ignore[attr-defined]
        pmfs = served_rl_pmfs(self.engine, obs, offered)
        u = self._rng.random(len(pmfs))[:, None]
        return np.minimum((np.cumsum(pmfs, axis=1) <= u).sum(axis=1), pmfs.shape[1] - 1)


def is_journey(env_id: str, env_kwargs: dict[str, Any] | None = None) -> bool:
    from ..envs.journey import EngagementJourneyEnv

    env = make_env(env_id, env_kwargs)
    try:
        return isinstance(env.unwrapped, EngagementJourneyEnv)
    finally:
        env.close()


def true_value(
    policy: Callable[[np.ndarray, dict[str, Any]], int],
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    episodes: int = 2000,
    seed: int = 0,
    *,
    progress: bool = False,
) -> Any:
    """The policy's expected return with a 95% interval (`MonteCarloValue`): the journey's own
    `monte_carlo_value` (batched when the policy can), or plain rollouts of any other env."""
    from ..envs.journey_value import MonteCarloValue, monte_carlo_value

    if is_journey(env_id, env_kwargs):
        batched = isinstance(policy, EnginePolicy) and policy.is_rl
        return monte_carlo_value(
            policy, episodes, seed, env_kwargs=env_kwargs, batched=batched, progress=progress
        )
    env = make_env(env_id, env_kwargs)
    returns = np.zeros(episodes)
    obs, info = env.reset(seed=seed)
    for e in range(episodes):
        if e:
            obs, info = env.reset()
        done = False
        while not done:
            obs, reward, terminated, truncated, info = env.step(policy(obs, info))
            returns[e] += reward
            done = terminated or truncated
    env.close()
    mean = float(returns.mean())
    se = float(returns.std(ddof=1) / math.sqrt(episodes))
    return MonteCarloValue(mean, mean - 1.96 * se, mean + 1.96 * se, se, episodes, returns)


def module_value_evaluator(
    env_id: str, env_kwargs: dict[str, Any], episodes: int, seed: int
) -> Callable[[bytes], float]:
    """module bytes → the true value of the RL app serving it (floor 0)."""
    from .envs import feature_names as names_of

    env = make_env(env_id, env_kwargs)
    names = names_of(env)
    env.close()

    def evaluate(data: bytes) -> float:
        policy = EnginePolicy(rl_engine(data), names, seed)
        return float(true_value(policy, env_id, env_kwargs, episodes, seed).mean)

    return evaluate


def baseline_values(
    env_id: str, env_kwargs: dict[str, Any], episodes: int, seed: int
) -> dict[str, float]:
    """Reference values the env knows (the journey's myopic oracle and its rule); else none."""
    if not is_journey(env_id, env_kwargs):
        return {}
    from ..envs.journey_value import GreedyPolicy, RestWhenFatigued, monte_carlo_value

    return {
        "myopic oracle (greedy)": monte_carlo_value(
            GreedyPolicy(), episodes, seed, env_kwargs=env_kwargs
        ).mean,
        "rule: rest when fatigued": monte_carlo_value(
            RestWhenFatigued(), episodes, seed, env_kwargs=env_kwargs
        ).mean,
    }
