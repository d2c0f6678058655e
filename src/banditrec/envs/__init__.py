"""Gymnasium simulators with ground truth, registered as `banditrec/<Name>-v0` on import.

| id | what |
| --- | --- |
| `banditrec/Content-v0` | users with drifting topic interests, items with topic and quality, new items arriving; logistic clicks with position bias |
| `banditrec/Channel-v0` | email / push / SMS / in-app, per-user responsiveness, fatigue, cost; reward = value − cost |
| `banditrec/SendTime-v0` | per-user activity over hour × weekday; reward = opened within a window |
| `banditrec/EngagementJourney-v0` | sequential: a user's journey, fatigue and churn (the RL case) |
| `banditrec/Supervised-v0` | any labelled dataset as a bandit (`dataset=` or `X=, y=`); `Digits-v0`, `Wine-v0`, `Iris-v0`, `BreastCancer-v0` preset |

Bandit envs (all but the journey)
---------------------------------
An episode never ends. `reset(seed=…)` builds the world and shows the first context;
`step(action_index)` returns that action's reward and shows the next context. Every
`info` describes the context just shown:

- `info["context"]`: namespaced features, exactly `DecisionRequest.context`;
- `info["actions"]`: `[{"id": str, "features": {namespace: {...}}}, ...]`, as the HTTP API takes;
- `info["expected_rewards"]`: `np.ndarray`, q(x, a) for each action, in the same order;
- after a step, `info["taken"]`: the expected reward and regret of the action just played.

`to_feature_set(info)` and `to_request(info)` turn that into a `FeatureSet` / a validated
`DecisionRequest`. The observation is a numeric `Dict(context=Box, actions=Box)` for
learners that want arrays.

Batched path (stable API, used by off-policy evaluation)
-------------------------------------------------------
`env.unwrapped.sample_batch(n, rng) -> BanditBatch` draws n i.i.d. contexts from the
world as it is (the clock does not move; the env's own random streams are untouched).
`BanditBatch` has:

- `expected_rewards`: (n, K) float array, q(x_i, a);
- `success_prob`, `value_on_success`, `offset`: reward = offset + value · Bernoulli(success_prob);
- `sample_rewards(actions, rng) -> (n,)` for an (n,) int array of action indices;
- `feature_set(i, action_id_feature=True) -> FeatureSet`, `request(i, event_id=None) -> DecisionRequest`,
  `context(i)`, `actions(i)`, `observation(i)`: row i, built on demand;
- `value(pmfs)`: the true value mean_i Σ_a π(a|x_i) q(x_i, a) of per-row pmfs (n, K);
  `oracle_value()`, `uniform_value()`, `oracle_actions()`.

The journey env
---------------
`EngagementJourney-v0` has a flat float32 `Box` observation (`journey.OBS_FIELDS`) and a
`Discrete` action space (0 = rest), episodes that end by churn (terminated) or at the
horizon (truncated), the same `info` keys for bandit policies (`expected_rewards` being the
immediate ones), and `monte_carlo_value(policy, episodes, seed)` for the true expected
return of a policy (mean and confidence interval). Its vectorized dynamics
(`JourneyDynamics`) are its batched path.
"""

from __future__ import annotations

from typing import Any

import gymnasium

from .base import BanditBatch, BanditEnv, to_feature_set, to_request
from .channel import ChannelEnv
from .content import ContentEnv
from .journey import EngagementJourneyEnv, JourneyDynamics
from .journey_value import GreedyPolicy, MonteCarloValue, RestWhenFatigued, monte_carlo_value
from .send_time import SendTimeEnv
from .supervised import SupervisedBanditEnv, load_dataset

NAMESPACE = "banditrec"

_ENTRY_POINTS: dict[str, tuple[str, dict[str, Any]]] = {
    "Content-v0": ("banditrec.envs.content:ContentEnv", {}),
    "Channel-v0": ("banditrec.envs.channel:ChannelEnv", {}),
    "SendTime-v0": ("banditrec.envs.send_time:SendTimeEnv", {}),
    "EngagementJourney-v0": ("banditrec.envs.journey:EngagementJourneyEnv", {}),
    "Supervised-v0": ("banditrec.envs.supervised:SupervisedBanditEnv", {}),
    "Digits-v0": ("banditrec.envs.supervised:SupervisedBanditEnv", {"dataset": "digits"}),
    "Wine-v0": ("banditrec.envs.supervised:SupervisedBanditEnv", {"dataset": "wine"}),
    "Iris-v0": ("banditrec.envs.supervised:SupervisedBanditEnv", {"dataset": "iris"}),
    "BreastCancer-v0": (
        "banditrec.envs.supervised:SupervisedBanditEnv",
        {"dataset": "breast_cancer"},
    ),
}

ENV_IDS: tuple[str, ...] = tuple(f"{NAMESPACE}/{name}" for name in _ENTRY_POINTS)

# A VW configuration that learns each env well (measured; see docs/simulation.md). Namespace
# letters: Content user/topic; Channel user/fatigue × channel; SendTime user/day × hour;
# Journey user/journey × channel+content/timing; Supervised x × label.
SUGGESTED_POLICIES: dict[str, dict[str, Any]] = {
    "Content-v0": {"kind": "vw", "interactions": ["ut"], "explorer": {"type": "squarecb"}},
    "Channel-v0": {
        "kind": "vw",
        "interactions": ["uc", "fc"],
        "explorer": {"type": "squarecb"},
        "reward_range": [-0.06, 2.0],
    },
    "SendTime-v0": {"kind": "vw", "interactions": ["uh", "dh"], "explorer": {"type": "squarecb"}},
    "EngagementJourney-v0": {
        "kind": "vw",
        "interactions": ["jc", "jt", "uc", "ut"],
        "explorer": {"type": "squarecb"},
        "reward_range": [-0.04, 2.0],
    },
    "Supervised-v0": {
        "kind": "vw",
        "interactions": ["xl"],
        "explorer": {"type": "epsilon", "epsilon": 0.05},
    },
}
for _name in ("Digits-v0", "Wine-v0", "Iris-v0", "BreastCancer-v0"):
    SUGGESTED_POLICIES[_name] = SUGGESTED_POLICIES["Supervised-v0"]


def suggested_policy(env_id: str) -> dict[str, Any]:
    """A sensible VW policy config for a registered env (a fresh copy)."""
    name = env_id.split("/", 1)[-1]
    if name not in SUGGESTED_POLICIES:
        raise ValueError(f"no suggested policy for {env_id!r}; known envs: {list(ENV_IDS)}")
    import copy

    return copy.deepcopy(SUGGESTED_POLICIES[name])


def register_envs() -> None:
    """Register every env with Gymnasium (idempotent)."""
    for name, (entry_point, kwargs) in _ENTRY_POINTS.items():
        env_id = f"{NAMESPACE}/{name}"
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point=entry_point, kwargs=kwargs)


register_envs()

__all__ = [
    "ENV_IDS",
    "SUGGESTED_POLICIES",
    "BanditBatch",
    "BanditEnv",
    "ChannelEnv",
    "ContentEnv",
    "EngagementJourneyEnv",
    "GreedyPolicy",
    "JourneyDynamics",
    "MonteCarloValue",
    "RestWhenFatigued",
    "SendTimeEnv",
    "SupervisedBanditEnv",
    "load_dataset",
    "monte_carlo_value",
    "register_envs",
    "suggested_policy",
    "to_feature_set",
    "to_request",
]
