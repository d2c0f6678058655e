"""Conversion to Open Bandit Pipeline's (obp) data layout, for cross-checking with it.

obp wants one fixed action space: actions are renumbered over every action id in the log,
and a row's pmf is zero on actions it did not offer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..decision.features import FeatureSet

if TYPE_CHECKING:
    from .dataset import LoggedBandit

_CONTEXT_ONLY = [{"context": {"bias": 1}}]


def hashed_context(x: FeatureSet, dim: int) -> np.ndarray:
    """The context alone as a hashed vector: `FeatureSet.hashed` keeps context features only
    in their crosses with action features, so cross them with one constant pseudo-action."""
    return FeatureSet(x.context, _CONTEXT_ONLY, ["context"]).hashed(dim)[0]


def _to_global(
    data: LoggedBandit, per_row: np.ndarray, index: np.ndarray, n_global: int
) -> np.ndarray:
    out = np.zeros((data.n, n_global))
    rows, cols = np.nonzero(index >= 0)
    out[rows, index[rows, cols]] = per_row[rows, cols]
    return out


def _positions(data: LoggedBandit) -> tuple[np.ndarray, int]:
    if data.slot is None:
        return np.zeros(data.n, dtype=int), 1
    return data.slot.astype(int), len(data.slot_names)


def _by_position(data: LoggedBandit, flat: np.ndarray) -> np.ndarray:
    """(n, n_actions) → obp's (n, n_actions, len_list).

    obp reads only the entry at each row's own position, but checks that every position's
    entry is a distribution; a row's pmf is therefore repeated at every position."""
    _, len_list = _positions(data)
    return np.repeat(flat[:, :, None], len_list, axis=2)


def obp_bandit_feedback(data: LoggedBandit, context_dim: int = 32) -> dict[str, Any]:
    vocab, index = data.action_vocabulary()
    n_global = len(vocab)
    if data.context is not None:
        context = np.asarray(data.context, dtype=np.float64)
    elif data.features is not None:
        context = np.stack(
            [hashed_context(data.feature_set(i), context_dim) for i in range(data.n)]
        )
    else:
        context = np.ones((data.n, 1))
    feedback: dict[str, Any] = {
        "n_rounds": data.n,
        "n_actions": n_global,
        "action": index[np.arange(data.n), data.action],
        "position": _positions(data)[0],
        "reward": data.reward.copy(),
        "pscore": data.pscore.copy(),
        "context": context,
        "action_context": np.eye(n_global),
        "pi_b": _by_position(data, _to_global(data, data.pi_b, index, n_global)),
        "action_ids": vocab,
    }
    if data.expected_reward is not None:
        feedback["expected_reward"] = _to_global(data, data.expected_reward, index, n_global)
    return feedback


def obp_action_dist(data: LoggedBandit, pi_e: np.ndarray) -> np.ndarray:
    """A target pmf (n, K) in obp's `action_dist` layout (n_rounds, n_actions, len_list)."""
    vocab, index = data.action_vocabulary()
    return _by_position(
        data, _to_global(data, np.asarray(pi_e, dtype=np.float64), index, len(vocab))
    )
