"""A reinforcement-learning policy behind the one `Policy` interface: a trained RLlib module.

The request's context carries the journey state under the state namespace (see
`banditrec.decision.journey`); the pmf is the module's action distribution over the offered
actions (softmax of a PPO module's logits at the configured temperature, or a DQN module's
greedy action), renormalized over the actions offered. The app's `min_probability` floor is
the exploration floor, applied by the engine as for every policy.

RL policies are trained offline in a simulator (`banditrec train-rl`), so `learn` only
counts events; a new module arrives as a new file (`module_path`) or as model bytes
published to the model registry (`to_bytes` / `from_bytes`: the exported .npz, no pickle).
torch and RLlib are imported only once a module is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

import numpy as np

from ..decision.features import FeatureSet, Interaction
from ..policy_config import RLPolicyConfig
from .base import Policy

if TYPE_CHECKING:
    from .rl_module import LoadedModule


class RLPolicy(Policy):
    kind = "rl"

    def __init__(self, config: RLPolicyConfig, module: LoadedModule | None = None) -> None:
        super().__init__(config)
        if module is None and config.module_path:
            from .rl_module import read_module

            module = read_module(config.module_path)
        self.module = module
        self._columns = {a: i for i, a in enumerate(module.card.action_ids)} if module else {}

    @property
    def action_ids(self) -> list[str]:
        return list(self.module.card.action_ids) if self.module else []

    @property
    def feature_names(self) -> list[str]:
        return list(self.module.card.feature_names) if self.module else []

    def distribution(self, obs: np.ndarray) -> np.ndarray:
        """(n, K) the policy's pmf over all the module's actions, for (n, d) observations."""
        if self.module is None:
            raise ValueError("this RL app has no module yet: set module_path or publish one")
        scores = self.module.scores(obs)
        if self.config.greedy or self.module.gives_q_values:
            best = scores >= scores.max(axis=1, keepdims=True) - 1e-12
            return best / best.sum(axis=1, keepdims=True)
        z = scores / self.config.temperature
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def columns(self, action_ids: list[str]) -> np.ndarray:
        """The module's output index of each offered action id."""
        try:
            return np.fromiter((self._columns[a] for a in action_ids), np.intp, len(action_ids))
        except KeyError as exc:
            raise ValueError(
                f"action {exc.args[0]!r} is not one this RL module knows; its actions are "
                f"{self.action_ids}"
            ) from None

    def observation(self, x: FeatureSet) -> np.ndarray:
        from ..decision.journey import observation

        return observation(x.context, self.feature_names, self.config.state_namespace)

    def pmf(self, x: FeatureSet, seed: int) -> np.ndarray:
        if self.module is None:  # nothing trained yet: every offered action alike
            return np.full(len(x), 1.0 / len(x))
        cols = self.columns(x.action_ids)
        return self.distribution(self.observation(x)[None, :])[0, cols]

    def learn(self, it: Interaction) -> None:
        self.n_learned += 1

    def to_bytes(self) -> bytes:
        return self.module.data if self.module else b""

    @classmethod
    def from_bytes(cls, config: RLPolicyConfig, data: bytes) -> Self:
        if not data:
            return cls(config)
        from .rl_module import load_module

        return cls(config, load_module(data))

    def reconfigured(self, config: RLPolicyConfig) -> RLPolicy:
        """New settings, same module (no reload), unless the config names another module file."""
        if config.module_path != self.config.module_path:
            return type(self)(config)
        return type(self)(config, self.module)
