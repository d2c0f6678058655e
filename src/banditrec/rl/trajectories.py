"""Logged journeys as trajectories: decisions grouped by episode, ordered by step.

Any log of decisions works — a simulator run (collect.py) or the service's export — as long
as each decision's context names its episode and step (`{"episode": {"id", "step"}}`, see
decision/journey.py). Records are read by the replay package (`from_records` / `read_dsjson`, the
same validation as every OPE), then grouped here. Each trajectory is taken to be a whole
journey: nothing is earned after its last logged decision.

Arrays are (N trajectories, H steps), padded after each trajectory's end (`mask`); actions
are indexed in the log's action vocabulary (every action id seen, in order of appearance),
so a target policy's pmf and a Q-function share one action space across steps.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..decision.journey import STATE_NAMESPACE, episode_of, observation
from ..decision.record import LoggedEvent
from ..replay.dataset import LoggedBandit
from ..replay.readers import from_records as read_records
from ..replay.readers import read_dsjson


@dataclass(eq=False)
class Trajectories:
    log: LoggedBandit
    """The decisions, one row each, as the replay package reads them."""
    rows: np.ndarray
    """(N, H) row of `log` at each step of each trajectory; −1 after its end."""
    episode_ids: list[str]
    steps: np.ndarray
    """(N, H) the logged step numbers (−1 on padding)."""
    obs: np.ndarray
    """(N, H, d) the state features at each step (0 on padding)."""
    feature_names: list[str]
    action_ids: list[str]
    """The action vocabulary: every action id in the log."""
    columns: np.ndarray
    """(n_rows, K) vocabulary index of each row's offered actions (−1 on padding)."""
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.rows.shape[0])

    def __len__(self) -> int:
        return self.n

    @property
    def horizon(self) -> int:
        return int(self.rows.shape[1])

    @property
    def n_actions(self) -> int:
        return len(self.action_ids)

    @property
    def mask(self) -> np.ndarray:
        return self.rows >= 0

    def _take(self, values: np.ndarray, fill: float = 0.0) -> np.ndarray:
        out = np.full(self.rows.shape, fill, dtype=np.float64)
        out[self.mask] = values[self.rows[self.mask]]
        return out

    @property
    def reward(self) -> np.ndarray:
        return self._take(self.log.reward)

    @property
    def pscore(self) -> np.ndarray:
        """(N, H) the behaviour policy's probability of the logged action (1 on padding)."""
        return self._take(self.log.pscore, fill=1.0)

    @property
    def action(self) -> np.ndarray:
        """(N, H) logged action as a vocabulary index (0 on padding)."""
        chosen = self.columns[np.arange(self.log.n), self.log.action]
        return self._take(chosen).astype(np.intp)

    @property
    def offered(self) -> np.ndarray:
        """(N, H, A) True where the step offered that action."""
        return self.by_action(self.log.mask.astype(np.float64)) > 0.0

    def by_action(self, per_row: np.ndarray) -> np.ndarray:
        """(N, H, A) from (n_rows, K) values over each row's offered actions (e.g. pmfs)."""
        per_row = np.asarray(per_row, dtype=np.float64)
        if per_row.shape != self.columns.shape:
            raise ValueError(f"expected (n_rows, K) = {self.columns.shape}, got {per_row.shape}")
        flat = np.zeros((self.log.n, self.n_actions))
        r, k = np.nonzero(self.columns >= 0)
        flat[r, self.columns[r, k]] = per_row[r, k]
        out = np.zeros((*self.rows.shape, self.n_actions))
        out[self.mask] = flat[self.rows[self.mask]]
        return out

    def take(self, index: np.ndarray) -> Trajectories:
        """The given trajectories (rows of `log` are shared, not copied)."""
        idx = np.asarray(index, dtype=np.intp)
        return Trajectories(
            self.log,
            self.rows[idx],
            [self.episode_ids[i] for i in idx],
            self.steps[idx],
            self.obs[idx],
            self.feature_names,
            self.action_ids,
            self.columns,
            self.skipped,
        )


def from_log(
    log: LoggedBandit,
    *,
    feature_names: list[str] | None = None,
    state_namespace: str = STATE_NAMESPACE,
) -> Trajectories:
    """Group a log's decisions into trajectories. `feature_names`: the state features to read
    (default: those of the first decision, in its order)."""
    if log.n == 0:
        raise ValueError("the log has no joined decisions")
    if log.is_multislot:
        raise ValueError("trajectories need a single-slot log; this one has slots")
    by_episode: dict[str, list[tuple[int, int]]] = {}
    skipped: dict[str, int] = dict(log.skipped)
    contexts = [log.feature_set(i).context for i in range(log.n)]
    for i, context in enumerate(contexts):
        where = episode_of(context)
        if where is None:
            skipped["no episode id and step"] = skipped.get("no episode id and step", 0) + 1
            continue
        by_episode.setdefault(where[0], []).append((where[1], i))
    if not by_episode:
        raise ValueError(
            "no logged decision names its episode: send context.episode = {id, step} with each "
            "decision of a journey"
        )
    if feature_names is None:
        first = next(iter(by_episode.values()))[0][1]
        state = contexts[first].get(state_namespace)
        if not isinstance(state, Mapping) or not state:
            raise ValueError(f"the log's decisions carry no context.{state_namespace} state")
        feature_names = list(state)
    horizon = max(len(v) for v in by_episode.values())
    n = len(by_episode)
    rows = np.full((n, horizon), -1, dtype=np.intp)
    steps = np.full((n, horizon), -1, dtype=np.int64)
    obs = np.zeros((n, horizon, len(feature_names)))
    for e, (episode, decisions) in enumerate(by_episode.items()):
        decisions.sort()
        seen = [s for s, _ in decisions]
        if len(set(seen)) != len(seen):
            dup = next(s for s in seen if seen.count(s) > 1)
            raise ValueError(f"episode {episode!r} logs step {dup} more than once")
        for t, (step, i) in enumerate(decisions):
            rows[e, t] = i
            steps[e, t] = step
            obs[e, t] = observation(contexts[i], feature_names, state_namespace)
    vocab, columns = log.action_vocabulary()
    return Trajectories(
        log, rows, list(by_episode), steps, obs, list(feature_names), vocab, columns, skipped
    )


def from_records(records: Iterable[Mapping[str, Any] | LoggedEvent], **kwargs: Any) -> Trajectories:
    """Trajectories from joined DSJson records (dicts or `LoggedEvent`s)."""
    return from_log(read_records(records, source="records"), **kwargs)


def read_trajectories(
    path: str | Path, *, progress: bool | None = None, **kwargs: Any
) -> Trajectories:
    """Trajectories from a DSJson log file (the service's export or a simulator run's)."""
    return from_log(read_dsjson(path, progress=progress), **kwargs)


__all__ = ["Trajectories", "from_log", "from_records", "read_trajectories"]
