"""What every bandit simulator shares: the batch of contexts with ground truth, the
Gymnasium plumbing, and the bridge from an env step to the decision API.

Each env draws its contexts in one vectorized method that returns a `BanditBatch`. The
Gymnasium `step` path is that same code with a batch of one row plus the env's own clock
(drift, arrivals, fatigue), so the single-step and the batched paths can never disagree
about the truth.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import gymnasium as gym
import numpy as np

from ..decision.features import FeatureSet
from ..decision.schema import DecisionRequest

Context = dict[str, dict[str, Any]]
ActionSpec = dict[str, Any]  # {"id": str, "features": {namespace: {feature: value}}}
Describe = Callable[[int], tuple[Context, list[ActionSpec]]]
Observe = Callable[[int], dict[str, np.ndarray]]
P = TypeVar("P")


@dataclass(frozen=True, eq=False)
class BanditBatch:
    """n contexts, each with the same number K of candidate actions, and the truth about them.

    Rewards are `offset + value · Bernoulli(success_prob)` per (row, action): a click is
    (0, 1, p), a paid send is (−cost, conversion value, p), a labelled example is (0, 1, 0/1).

    - `expected_rewards` (n, K): q(x_i, a), exact.
    - `sample_rewards(actions, rng)`: one reward per row for the given action indices.
    - `feature_set(i)` / `request(i)` / `context(i)` / `actions(i)`: row i in the shape
      the HTTP API and the policies take; built lazily, so a large batch stays cheap.
    - `value(pmfs)`: the true value of a policy on this batch, mean_i Σ_a π(a|x_i) q(x_i, a).
    """

    success_prob: np.ndarray
    value_on_success: np.ndarray | float
    offset: np.ndarray | float
    describe: Describe = field(repr=False)
    observe: Observe = field(repr=False)
    expected_rewards: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        p = np.asarray(self.success_prob, dtype=np.float64)
        if p.ndim != 2:
            raise ValueError(f"success_prob must be (n, K), got shape {p.shape}")
        q = self.offset + self.value_on_success * p
        if np.shape(q) != p.shape:
            q = np.broadcast_to(q, p.shape).copy()
        object.__setattr__(self, "success_prob", p)
        object.__setattr__(self, "expected_rewards", q)

    def __len__(self) -> int:
        return self.success_prob.shape[0]

    @property
    def n_actions(self) -> int:
        return self.success_prob.shape[1]

    # --- rows in the decision API's shape ---------------------------------------------

    def context(self, i: int) -> Context:
        return self.describe(i)[0]

    def actions(self, i: int) -> list[ActionSpec]:
        return self.describe(i)[1]

    def feature_set(self, i: int, *, action_id_feature: bool = True) -> FeatureSet:
        context, actions = self.describe(i)
        return _feature_set(context, actions, action_id_feature)

    def request(self, i: int, event_id: str | None = None) -> DecisionRequest:
        context, actions = self.describe(i)
        return _request(context, actions, event_id)

    def observation(self, i: int) -> dict[str, np.ndarray]:
        return self.observe(i)

    # --- truth ------------------------------------------------------------------------

    def _take(
        self, values: np.ndarray | float, rows: np.ndarray, actions: np.ndarray
    ) -> np.ndarray | float:
        if isinstance(values, int | float):
            return values
        return np.broadcast_to(values, self.success_prob.shape)[rows, actions]

    def sample_rewards(self, actions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(n,) rewards of the given (n,) action indices, drawn with `rng`."""
        return self._draw_rewards(self._check_actions(actions), rng)

    def _draw_rewards(self, actions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        rows = np.arange(len(self))
        hit = rng.random(len(self)) < self.success_prob[rows, actions]
        return (
            self._take(self.offset, rows, actions)
            + self._take(self.value_on_success, rows, actions) * hit
        )

    def oracle_actions(self) -> np.ndarray:
        return np.argmax(self.expected_rewards, axis=1)

    def value(self, pmfs: np.ndarray) -> float:
        """True value of a (possibly stochastic) policy: mean_i Σ_a π(a|x_i) q(x_i, a)."""
        pmfs = np.asarray(pmfs, dtype=np.float64)
        if pmfs.shape != self.expected_rewards.shape:
            raise ValueError(
                f"pmfs must have shape {self.expected_rewards.shape}, got {pmfs.shape}"
            )
        return float(np.mean(np.sum(pmfs * self.expected_rewards, axis=1)))

    def oracle_value(self) -> float:
        return float(self.expected_rewards.max(axis=1).mean())

    def uniform_value(self) -> float:
        return float(self.expected_rewards.mean())

    def _check_actions(self, actions: np.ndarray) -> np.ndarray:
        actions = np.asarray(actions)
        if actions.shape != (len(self),) or not np.issubdtype(actions.dtype, np.integer):
            raise ValueError(
                f"actions must be an integer array of shape ({len(self)},), got {actions.shape}"
            )
        if len(actions) and (actions.min() < 0 or actions.max() >= self.n_actions):
            raise ValueError(
                f"action indices must be in [0, {self.n_actions}), got {actions.min()}..{actions.max()}"
            )
        return actions


# --- env step → decision API ------------------------------------------------------------


def _feature_set(
    context: Context, actions: Sequence[ActionSpec], action_id_feature: bool
) -> FeatureSet:
    return FeatureSet.build(
        context, [(a["id"], a["features"]) for a in actions], action_id_feature=action_id_feature
    )


def _request(
    context: Context, actions: Sequence[ActionSpec], event_id: str | None
) -> DecisionRequest:
    data: dict[str, Any] = {"context": context, "actions": list(actions)}
    if event_id is not None:
        data["event_id"] = event_id
    return DecisionRequest.model_validate(data)


def to_feature_set(info: Mapping[str, Any], *, action_id_feature: bool = True) -> FeatureSet:
    """The `FeatureSet` a policy decides on, from an env step's `info`."""
    return _feature_set(info["context"], info["actions"], action_id_feature)


def to_request(info: Mapping[str, Any], event_id: str | None = None) -> DecisionRequest:
    """The validated `DecisionRequest` (as POSTed to /decisions) of an env step's `info`."""
    return _request(info["context"], info["actions"], event_id)


# --- Gymnasium plumbing ---------------------------------------------------------------------


def spawn_generators(parent: np.random.Generator, n: int) -> list[np.random.Generator]:
    """Independent child generators, derived from the env's seeded `np_random`."""
    root = np.random.SeedSequence(parent.integers(0, 2**63, size=4).tolist())
    return [np.random.default_rng(s) for s in root.spawn(n)]


class BanditEnv(gym.Env[dict[str, np.ndarray], np.int64]):
    """A contextual bandit as a never-ending Gymnasium episode.

    `reset` builds the world (users, items) from the seed and presents the first context;
    `step(a)` returns the reward of action index `a` and presents the next context. Every
    returned `info` describes the context just presented: `context`, `actions`,
    `expected_rewards`; after a step it also carries `taken` (the expected reward and
    regret of the action just played).

    Contexts, world changes and rewards use separate random streams, so two policies run
    with the same seed see the same users and candidates (common random numbers) unless
    their own actions change the world (e.g. fatigue).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self) -> None:
        self._current: BanditBatch | None = None
        self._contexts_rng = np.random.default_rng(0)
        self._rewards_rng = np.random.default_rng(0)

    # subclasses implement these three
    def _build_world(self, rng: np.random.Generator) -> None:
        raise NotImplementedError

    def _next_context(self, rng: np.random.Generator) -> BanditBatch:
        """Advance the env's clock and present one new context (a batch of one row)."""
        raise NotImplementedError

    def sample_batch(self, n: int, rng: np.random.Generator) -> BanditBatch:
        """n i.i.d. contexts from the world as it is now (the clock does not move)."""
        raise NotImplementedError

    def _after_step(self, batch: BanditBatch, action: int, reward: float) -> None:
        """Action-dependent world changes (fatigue); nothing by default."""

    # --- Gymnasium API -----------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        world_rng, self._contexts_rng, self._rewards_rng = spawn_generators(self.np_random, 3)
        self._build_world(world_rng)
        self._current = self._next_context(self._contexts_rng)
        return self._current.observation(0), self._info(self._current)

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        batch = self._require_reset()
        index = action_index(action, batch.n_actions)
        reward = float(batch._draw_rewards(np.array([index]), self._rewards_rng)[0])
        q = batch.expected_rewards[0]
        self._after_step(batch, index, reward)
        self._current = self._next_context(self._contexts_rng)
        info = self._info(self._current)
        info["taken"] = {"expected_reward": float(q[index]), "regret": float(q.max() - q[index])}
        return self._current.observation(0), reward, False, False, info

    @property
    def current(self) -> BanditBatch:
        """The context presented now, as a batch of one row."""
        return self._require_reset()

    # --- helpers ----------------------------------------------------------------------

    def _require_reset(self) -> BanditBatch:
        if self._current is None:
            raise RuntimeError(f"{type(self).__name__}: call reset() before step()")
        return self._current

    @staticmethod
    def _info(batch: BanditBatch) -> dict[str, Any]:
        context, actions = batch.describe(0)
        return {
            "context": context,
            "actions": actions,
            "expected_rewards": batch.expected_rewards[0].copy(),
        }


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def choose_k(rng: np.random.Generator, n: int, population: int, k: int) -> np.ndarray:
    """(n, k) indices: k distinct items out of `population` per row, uniformly."""
    if k > population:
        raise ValueError(f"cannot offer {k} distinct candidates out of {population}")
    if k == population:
        return np.tile(np.arange(population), (n, 1))
    if n * population <= 65_536 or np.prod(1.0 - np.arange(k) / population) < 0.25:
        # small or dense draw: a partial sort of random keys
        return np.argpartition(rng.random((n, population)), k, axis=1)[:, :k]
    # Large sparse draw: rows drawn with replacement, redrawn whole while they hold a
    # repeat (rejection keeps every k-subset, in every order, equally likely); far
    # cheaper than n × population random keys.
    out = rng.integers(population, size=(n, k))
    redo = np.arange(n)
    while redo.size:
        rows = np.sort(out[redo], axis=1)
        redo = redo[(rows[:, 1:] == rows[:, :-1]).any(axis=1)]
        out[redo] = rng.integers(population, size=(redo.size, k))
    return out


def check_params(params: Any, *, signed: Sequence[str] = (), positive: Sequence[str] = ()) -> None:
    """Reject impossible simulator settings with a message that names the setting."""
    for f in dataclasses.fields(params):
        value = getattr(params, f.name)
        if not isinstance(value, int | float) or f.name in signed:
            continue
        if f.name in positive and value <= 0:
            raise ValueError(f"{type(params).__name__}.{f.name} must be positive, got {value}")
        if value < 0:
            raise ValueError(f"{type(params).__name__}.{f.name} must be non-negative, got {value}")


def make_params(cls: type[P], params: Mapping[str, Any]) -> P:
    """A simulator's settings dataclass from keyword arguments, naming any unknown one."""
    known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(f"unknown {cls.__name__} setting(s) {unknown}; known: {sorted(known)}")
    # lists (from JSON or YAML) stand for the tuple settings
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
    return cls(**values)


def action_index(action: Any, k: int) -> int:
    """The action as an index in [0, k); anything else is refused with what was expected."""
    try:
        index = int(action)
    except (TypeError, ValueError):
        raise ValueError(f"action must be an action index in [0, {k}), got {action!r}") from None
    if not 0 <= index < k or index != action:
        raise ValueError(f"action must be an action index in [0, {k}), got {action!r}")
    return index
