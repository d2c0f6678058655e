"""A target policy's pmf at every logged step of some trajectories, (N, H, A).

For any app, `engine_pmfs` asks `DecisionEngine.pmf` row by row (replay's `target_pmfs`:
the served pmf, seeded per event as serving seeds it). For a single-slot RL app in online
mode it computes the same pmfs in one forward pass per set of offered actions — the RL
policy's pmf does not depend on the event's seed, so the two agree exactly (a test holds
them together) and the batched one is what makes OPE over long journeys quick.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..decision.engine import DecisionEngine
from ..decision.journey import observation
from ..policies.rl import RLPolicy
from ..replay.target import target_pmfs
from .evaluate import served_rl_pmfs
from .trajectories import Trajectories


def _batchable(engine: DecisionEngine) -> bool:
    cfg = engine.config
    return isinstance(engine.policy, RLPolicy) and cfg.mode == "online" and cfg.slots is None


def engine_pmfs(
    engine: DecisionEngine,
    traj: Trajectories,
    *,
    batched: bool | None = None,
    progress: bool | None = None,
) -> np.ndarray:
    """(N, H, A) the app's served pmf at every logged step, over `traj.action_ids`."""
    log = traj.log
    use_batch = _batchable(engine) if batched is None else batched
    if not use_batch:
        return traj.by_action(target_pmfs(engine, log, progress=progress))
    if not _batchable(engine):
        raise ValueError("batched target pmfs need a single-slot RL app in online mode")
    policy: RLPolicy = engine.policy  # type: ignore[assignment]
    namespace = engine.config.policy.state_namespace  # type: ignore[union-attr]
    names = policy.feature_names or traj.feature_names
    per_row = np.zeros(log.pi_b.shape)
    groups: dict[tuple[str, ...], list[int]] = {}
    for i in np.unique(traj.rows[traj.mask]):
        groups.setdefault(tuple(log.ids(int(i))), []).append(int(i))
    for offered, rows in groups.items():
        obs = np.stack([observation(log.feature_set(i).context, names, namespace) for i in rows])
        per_row[np.asarray(rows), : len(offered)] = served_rl_pmfs(engine, obs, list(offered))
    return traj.by_action(per_row)


def state_pmfs(traj: Trajectories, pmfs_of: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """(N, H, A) from a function of the states: (m, d) observations → (m, A) pmfs over
    `traj.action_ids` (e.g. a hand-written rule), 0 on padding."""
    out = np.zeros((traj.n, traj.horizon, traj.n_actions))
    mask = traj.mask
    pmfs = np.asarray(pmfs_of(traj.obs[mask]), dtype=np.float64)
    if pmfs.shape != (int(mask.sum()), traj.n_actions):
        raise ValueError(
            f"expected pmfs of shape {(int(mask.sum()), traj.n_actions)}, got {pmfs.shape}"
        )
    out[mask] = pmfs
    return out
