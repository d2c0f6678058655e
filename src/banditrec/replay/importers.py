"""Logs from elsewhere into a `LoggedBandit`: obp's `bandit_feedback` dicts and plain tables.

- `from_obp(bandit_feedback)`: Open Bandit Pipeline's dict (`n_actions`, `action`,
  `reward`, `pscore`, `context`, optional `position`, `pi_b`, `action_context`,
  `expected_reward`); `obp_target(data, action_dist)` turns obp's `action_dist`
  (n_rounds, n_actions, len_list) into the target pmf `pi_e` the estimators read.
- `from_table(table)`: a pandas DataFrame, or a Parquet / CSV file, with one row per logged
  decision: `action`, `probability` (the logging policy's propensity of that action),
  `reward`, optional `position`, `event_id`, `timestamp`, and the context as one column of
  vectors (`context`) or as every other numeric column.

Every row offers every action seen in the source (obp's fixed action space). When the
source gives only the logged action's propensity, the logging pmf of the other actions is
unknown and its remaining mass is spread evenly over them: the estimators read only the
logged action's propensity, so no estimate depends on that choice. Rows get a `FeatureSet`
built from the dense context (namespace `x`, features `c0`, `c1`, …; an action's
`action_context` row, when given, as namespace `i`), so candidate policies run on imported
logs through the same `DecisionEngine` as on the service's own logs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..decision.features import FeatureSet
from .dataset import LoggedBandit

_TABLE_FIELDS = ("action", "probability", "reward", "position", "event_id", "timestamp")


def _logging_pmf(action: np.ndarray, pscore: np.ndarray, n_actions: int) -> np.ndarray:
    """The logged action's propensity, the rest spread evenly (see the module doc)."""
    if n_actions == 1:
        return np.ones((action.size, 1))
    pi_b = np.repeat(((1.0 - pscore) / (n_actions - 1))[:, None], n_actions, axis=1)
    pi_b[np.arange(action.size), action] = pscore
    return pi_b


def _feature_source(context: np.ndarray, action_ids: list[str], action_context: np.ndarray | None):
    actions = [
        (a, {} if action_context is None else {"i": _named(action_context[k])})
        for k, a in enumerate(action_ids)
    ]

    def features(i: int) -> FeatureSet:
        return FeatureSet.build({"x": _named(context[i])}, actions)

    return features


def _named(vector: np.ndarray) -> dict[str, float]:
    return {f"c{j}": float(v) for j, v in enumerate(vector) if v != 0.0}


def _check(action: np.ndarray, reward: np.ndarray, pscore: np.ndarray, n_actions: int) -> None:
    n = action.size
    if reward.shape != (n,) or pscore.shape != (n,):
        raise ValueError(
            f"action, reward and propensity need one entry per row; got {n}, "
            f"{reward.size} and {pscore.size}"
        )
    if n == 0:
        raise ValueError("the log has no rows")
    if ((action < 0) | (action >= n_actions)).any():
        bad = int(np.flatnonzero((action < 0) | (action >= n_actions))[0])
        raise ValueError(f"row {bad}: action {action[bad]} is outside 0..{n_actions - 1}")
    if not np.isfinite(reward).all():
        raise ValueError(f"reward has {int((~np.isfinite(reward)).sum())} non-finite values")
    bad_p = ~np.isfinite(pscore) | (pscore <= 0.0) | (pscore > 1.0)
    if bad_p.any():
        bad = int(np.flatnonzero(bad_p)[0])
        raise ValueError(f"row {bad}: propensity {pscore[bad]} is not in (0, 1]")


def _build(
    *,
    action: np.ndarray,
    reward: np.ndarray,
    pscore: np.ndarray,
    action_ids: list[str],
    context: np.ndarray | None,
    position: np.ndarray | None,
    pi_b: np.ndarray | None = None,
    action_context: np.ndarray | None = None,
    expected_reward: np.ndarray | None = None,
    event_id: Sequence[str] | None = None,
    timestamp: np.ndarray | None = None,
    source: str,
) -> LoggedBandit:
    n, k = action.size, len(action_ids)
    _check(action, reward, pscore, k)
    if pi_b is None:
        pi_b = _logging_pmf(action, pscore, k)
    slot, slot_names = None, [None]
    if position is not None:
        position = np.asarray(position, dtype=np.intp)
        if position.min() < 0:
            raise ValueError("positions must be non-negative integers")
        if position.max() > 0:
            slot, slot_names = position, [str(p) for p in range(int(position.max()) + 1)]
    return LoggedBandit(
        action=action,
        reward=reward,
        pscore=pscore,
        pi_b=pi_b,
        n_offered=np.full(n, k),
        event_id=list(event_id) if event_id is not None else [f"row{i}" for i in range(n)],
        action_ids=[action_ids] * n,
        features=None if context is None else _feature_source(context, action_ids, action_context),
        slot=slot,
        slot_names=slot_names,
        timestamp=timestamp,
        expected_reward=expected_reward,
        context=context,
        source=source,
    )


def from_obp(bandit_feedback: Mapping[str, Any]) -> LoggedBandit:
    """A `LoggedBandit` from obp's `bandit_feedback` dict (e.g. `OpenBanditDataset`'s or a
    `SyntheticBanditDataset`'s); positions become slots, each row its own decision."""
    missing = [k for k in ("n_actions", "action", "reward", "pscore") if k not in bandit_feedback]
    if missing:
        raise ValueError(f"bandit_feedback lacks {missing}; obp's dicts carry them")
    n_actions = int(bandit_feedback["n_actions"])
    action = np.asarray(bandit_feedback["action"], dtype=np.intp)
    n = action.size
    position = bandit_feedback.get("position")
    position = np.zeros(n, dtype=np.intp) if position is None else np.asarray(position, np.intp)
    pi_b = bandit_feedback.get("pi_b")
    if pi_b is not None:
        pi_b = np.asarray(pi_b, dtype=np.float64)
        pi_b = pi_b[np.arange(n), :, position] if pi_b.ndim == 3 else pi_b
    context = bandit_feedback.get("context")
    action_context = bandit_feedback.get("action_context")
    expected = bandit_feedback.get("expected_reward")
    names = bandit_feedback.get("action_ids")
    return _build(
        action=action,
        reward=np.asarray(bandit_feedback["reward"], dtype=np.float64),
        pscore=np.asarray(bandit_feedback["pscore"], dtype=np.float64),
        action_ids=[str(a) for a in names]
        if names is not None
        else [str(a) for a in range(n_actions)],
        context=None if context is None else np.asarray(context, dtype=np.float64),
        position=position,
        pi_b=pi_b,
        action_context=None if action_context is None else np.asarray(action_context, float),
        expected_reward=None if expected is None else np.asarray(expected, dtype=np.float64),
        source="obp bandit_feedback",
    )


def obp_target(data: LoggedBandit, action_dist: np.ndarray) -> np.ndarray:
    """obp's `action_dist` (n_rounds, n_actions, len_list) as `pi_e` (n, K): each row's pmf
    at its own position, over its offered actions (inverse of `obp_action_dist`)."""
    dist = np.asarray(action_dist, dtype=np.float64)
    vocab, index = data.action_vocabulary()
    if dist.ndim == 2:
        dist = dist[:, :, None]
    if dist.shape[:2] != (data.n, len(vocab)):
        raise ValueError(
            f"action_dist must be (n_rounds, n_actions, len_list) = ({data.n}, {len(vocab)}, …); "
            f"got {dist.shape}"
        )
    position = np.zeros(data.n, dtype=np.intp) if data.slot is None else data.slot
    rows = np.arange(data.n)[:, None]
    picked = dist[rows, np.maximum(index, 0), position[:, None]]
    return np.where(index >= 0, picked, 0.0)


def _read_table(table: Any) -> Any:
    import pandas as pd

    if isinstance(table, pd.DataFrame):
        return table, "DataFrame"
    path = Path(table)
    if not path.is_file():
        raise FileNotFoundError(f"no table at {path}")
    suffixes = "".join(path.suffixes).lower()
    if ".parquet" in suffixes or ".pq" in suffixes:
        return pd.read_parquet(path), str(path)
    if ".csv" in suffixes:
        return pd.read_csv(path), str(path)
    raise ValueError(f"{path}: read a .parquet or .csv(.gz) table, or pass a pandas DataFrame")


def from_table(
    table: Any,
    *,
    context: str | Sequence[str] | None = None,
    action: str = "action",
    probability: str = "probability",
    reward: str = "reward",
    position: str = "position",
) -> LoggedBandit:
    """A `LoggedBandit` from a DataFrame or a Parquet / CSV file (see the module doc).

    `context`: one column holding a vector per row, or a list of numeric columns; default:
    the `context` column if there is one, else every numeric column not named above (nor
    `event_id` / `timestamp`). Action values are ids (any type, compared as strings), in
    order of first appearance.
    """
    df, source = _read_table(table)
    absent = [c for c in (action, probability, reward) if c not in df.columns]
    if absent:
        raise ValueError(
            f"{source}: no column(s) {absent}; a table needs action, probability and reward "
            f"(columns: {list(df.columns)})"
        )
    codes, uniques = _factorize(df[action])
    ctx = _context_matrix(df, context, {action, probability, reward, position})
    return _build(
        action=codes,
        reward=df[reward].to_numpy(dtype=np.float64),
        pscore=df[probability].to_numpy(dtype=np.float64),
        action_ids=[str(u) for u in uniques],
        context=ctx,
        position=df[position].to_numpy() if position in df.columns else None,
        event_id=df["event_id"].astype(str).tolist() if "event_id" in df.columns else None,
        timestamp=df["timestamp"].to_numpy(dtype=np.float64) if "timestamp" in df.columns else None,
        source=source,
    )


def _factorize(column: Any) -> tuple[np.ndarray, list[Any]]:
    import pandas as pd

    codes, uniques = pd.factorize(column.astype(str))
    if (codes < 0).any():
        raise ValueError(f"action column has {int((codes < 0).sum())} missing values")
    return np.asarray(codes, dtype=np.intp), list(uniques)


def _context_matrix(
    df: Any, context: str | Sequence[str] | None, used: set[str]
) -> np.ndarray | None:
    if context is None:
        if "context" in df.columns:
            context = "context"
        else:
            context = [
                c
                for c in df.columns
                if c not in used | {"event_id", "timestamp"}
                and np.issubdtype(df[c].dtype, np.number)
            ]
            if not context:
                return None
    if isinstance(context, str):
        if context not in df.columns:
            raise ValueError(f"no context column {context!r} (columns: {list(df.columns)})")
        try:
            return np.stack([np.asarray(v, dtype=np.float64) for v in df[context]])
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"context column {context!r} must hold numeric vectors of one length ({exc})"
            ) from None
    missing = [c for c in context if c not in df.columns]
    if missing:
        raise ValueError(f"no context column(s) {missing} (columns: {list(df.columns)})")
    return df[list(context)].to_numpy(dtype=np.float64)
