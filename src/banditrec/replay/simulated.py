"""Logs from a simulator run: a policy served through `DecisionEngine` in a bandit env.

The env side is the batched API of `banditrec.envs` (`env.unwrapped.sample_batch(n, rng)`
returning a batch with `expected_rewards` (n, K), `sample_rewards(actions, rng)` and
`feature_set(i)`); anything offering it works. Decisions are the served ones
(`decision.recorder.Recorder`, the path every simulator takes), and the log keeps each
row's ground truth (`expected_reward`).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..decision.engine import DecisionEngine
from ..decision.features import FeatureSet
from ..decision.recorder import Recorder
from .dataset import LoggedBandit
from .progress import progress_bar


@runtime_checkable
class BanditBatch(Protocol):
    expected_rewards: np.ndarray

    def sample_rewards(self, actions: np.ndarray, rng: np.random.Generator) -> np.ndarray: ...

    def feature_set(self, i: int) -> FeatureSet: ...


def _batch_source(env: Any) -> Any:
    source = getattr(env, "unwrapped", env)
    if not callable(getattr(source, "sample_batch", None)):
        raise TypeError(
            f"{type(env).__name__} offers no sample_batch(n, rng); simulate with a banditrec bandit env"
        )
    return source


def simulate_log(
    env: Any,
    engine: DecisionEngine,
    n: int,
    rng: np.random.Generator | int | None = None,
    *,
    learn: bool = False,
    batch_size: int = 1000,
    id_prefix: str | None = None,
    progress: bool | None = None,
) -> LoggedBandit:
    """Serve `n` simulated decisions with `engine` and log them.

    learn=False keeps the logging policy fixed (a clean logging policy for OPE); learn=True
    lets it learn from each batch's rewards before the next batch, as a live app whose
    learner publishes every `batch_size` events does (an on-policy run). Event ids (which
    seed the draws, as in serving) are `<id_prefix>-<row>`; the default prefix comes from
    `rng`, so runs with different seeds draw independently.
    """
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    source = _batch_source(env)
    recorder = Recorder(engine)
    prefix = id_prefix if id_prefix is not None else f"sim{int(generator.integers(2**62)):x}"
    batches: list[tuple[Any, int]] = []  # (batch, first row)
    pmfs: list[np.ndarray] = []
    actions: list[int] = []
    rewards: list[np.ndarray] = []
    expected: list[np.ndarray] = []
    event_ids: list[str] = []
    with progress_bar(n, "simulating", progress, unit=" events") as bar:
        done = 0
        while done < n:
            size = min(batch_size, n - done)
            batch = source.sample_batch(size, generator)
            batches.append((batch, done))
            ids = [f"{prefix}-{done + j}" for j in range(size)]
            choices = [recorder.decide(e, batch.feature_set(j)) for j, e in enumerate(ids)]
            chosen = np.fromiter((c.chosen for c in choices), dtype=np.intp, count=size)
            pmfs.extend(c.pmf for c in choices)
            event_ids.extend(ids)
            r = np.asarray(batch.sample_rewards(chosen, generator), dtype=np.float64)
            if learn:
                for c, reward in zip(choices, r.tolist(), strict=True):
                    engine.learn(c.interaction(reward))
            actions.extend(int(a) for a in chosen)
            rewards.append(r)
            expected.append(np.asarray(batch.expected_rewards, dtype=np.float64))
            done += size
            bar.update(size)
    width = max(p.size for p in pmfs)
    pi_b = np.zeros((n, width))
    truth = np.zeros((n, width))
    n_offered = np.empty(n, dtype=np.intp)
    for i, p in enumerate(pmfs):
        pi_b[i, : p.size] = p
        n_offered[i] = p.size
    row = 0
    for e in expected:
        truth[row : row + e.shape[0], : e.shape[1]] = e
        row += e.shape[0]
    action = np.asarray(actions, dtype=np.intp)
    starts = np.array([start for _, start in batches])

    def features(i: int) -> FeatureSet:
        b = int(np.searchsorted(starts, i, side="right")) - 1
        batch, start = batches[b]
        return batch.feature_set(i - start)

    return LoggedBandit(
        action=action,
        reward=np.concatenate(rewards),
        pscore=pi_b[np.arange(n), action],
        pi_b=pi_b,
        n_offered=n_offered,
        event_id=event_ids,
        features=features,
        expected_reward=truth,
        source=f"simulation ({type(source).__name__})",
    )
