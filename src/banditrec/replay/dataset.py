"""`LoggedBandit`: a log of decisions as arrays, what every estimator and replay reads.

One row per logged (decision, slot). Actions are indexed in the order they were offered
in that row; rows offering fewer than the widest row's K actions are zero-padded (`mask`).
The inputs each row was decided on come back as a `FeatureSet` (`feature_set(i)`), so a
target policy computes its pmf through the same `DecisionEngine.pmf` that serves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..decision.features import FeatureSet
from ..decision.sampling import event_seed
from .estimators import OPEData

FeatureSource = Callable[[int], FeatureSet]


@dataclass(eq=False)
class LoggedBandit:
    action: np.ndarray
    """(n,) index of the logged action among the row's offered actions."""
    reward: np.ndarray
    """(n,) joined reward."""
    pscore: np.ndarray
    """(n,) probability the logging policy chose the logged action with."""
    pi_b: np.ndarray
    """(n, K) the logging policy's pmf over the offered actions, zero-padded."""
    n_offered: np.ndarray
    """(n,) how many actions each row offered."""
    event_id: list[str]
    """Decision id of each row (without slot); seeds target-policy draws as serving does."""
    action_ids: list[list[str]] | None = None
    """Offered action ids per row (None: positions 0..K-1 are the ids)."""
    features: FeatureSource | None = None
    """Row index → the FeatureSet the decision was made on."""
    slot: np.ndarray | None = None
    """(n,) index into `slot_names`; None for single-slot logs."""
    slot_names: list[str | None] = field(default_factory=lambda: [None])
    group: np.ndarray | None = None
    """(n,) decision index (rows of one multi-slot decision share it); None = row index."""
    timestamp: np.ndarray | None = None
    """(n,) decision time, seconds since the epoch, when known."""
    expected_reward: np.ndarray | None = None
    """(n, K) ground-truth expected reward of every offered action (simulators only)."""
    context: np.ndarray | None = None
    """(n, d) dense context vectors when the source has them (simulators); else None."""
    source: str = ""
    skipped: dict[str, int] = field(default_factory=dict)
    """Records left out while reading, by reason (e.g. no reward joined yet)."""

    def __post_init__(self) -> None:
        self.action = np.asarray(self.action, dtype=np.intp)
        self.reward = np.asarray(self.reward, dtype=np.float64)
        self.pscore = np.asarray(self.pscore, dtype=np.float64)
        self.pi_b = np.asarray(self.pi_b, dtype=np.float64)
        self.n_offered = np.asarray(self.n_offered, dtype=np.intp)
        n = self.action.shape[0]
        for name in ("reward", "pscore", "n_offered"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} must have one entry per row ({n})")
        if self.pi_b.ndim != 2 or self.pi_b.shape[0] != n:
            raise ValueError(f"pi_b must be (n_rows, n_actions) = ({n}, K); got {self.pi_b.shape}")
        if len(self.event_id) != n:
            raise ValueError(
                f"event_id must have one entry per row ({n}); got {len(self.event_id)}"
            )
        if n and ((self.action < 0) | (self.action >= self.n_offered)).any():
            bad = int(np.flatnonzero((self.action < 0) | (self.action >= self.n_offered))[0])
            raise ValueError(
                f"row {bad}: logged action {self.action[bad]} is not one of its {self.n_offered[bad]} actions"
            )
        chosen = self.pi_b[np.arange(n), self.action] if n else np.zeros(0)
        off = np.abs(chosen - self.pscore) > 1e-6 * np.maximum(1.0, self.pscore)
        if off.any():
            bad = int(np.flatnonzero(off)[0])
            raise ValueError(
                f"row {bad}: pscore {self.pscore[bad]} differs from the logging pmf's "
                f"{chosen[bad]} for the logged action"
            )
        if self.expected_reward is not None:
            self.expected_reward = np.asarray(self.expected_reward, dtype=np.float64)
            if self.expected_reward.shape != self.pi_b.shape:
                raise ValueError(
                    f"expected_reward must be {self.pi_b.shape}, got {self.expected_reward.shape}"
                )

    # --- shape --------------------------------------------------------------------

    @property
    def n(self) -> int:
        return int(self.action.shape[0])

    def __len__(self) -> int:
        return self.n

    @property
    def n_actions(self) -> int:
        """K: the widest row's number of offered actions."""
        return int(self.pi_b.shape[1])

    @property
    def mask(self) -> np.ndarray:
        """(n, K) True where the row offered that action."""
        return np.arange(self.n_actions)[None, :] < self.n_offered[:, None]

    @property
    def is_multislot(self) -> bool:
        return self.slot is not None and len(self.slot_names) > 1

    def decision_index(self) -> np.ndarray:
        return np.arange(self.n) if self.group is None else self.group

    def slot_name(self, i: int) -> str | None:
        return None if self.slot is None else self.slot_names[int(self.slot[i])]

    def ids(self, i: int) -> list[str]:
        if self.action_ids is not None:
            return self.action_ids[i]
        return [str(k) for k in range(int(self.n_offered[i]))]

    # --- inputs of row i ------------------------------------------------------------

    def feature_set(self, i: int) -> FeatureSet:
        if self.features is None:
            raise ValueError(
                f"this log ({self.source or 'arrays'}) carries no features; a target policy "
                "needs them to compute its pmf — read a DSJson log or a simulator run instead"
            )
        return self.features(i)

    def seed(self, app_seed: int, i: int) -> int:
        """The draw seed serving would use for row i under an app with `app_seed`."""
        return event_seed(app_seed, self.event_id[i], self.slot_name(i))

    # --- views --------------------------------------------------------------------

    def ope_data(
        self, pi_e: np.ndarray, q_hat: np.ndarray | None = None, q_hat_dr: np.ndarray | None = None
    ) -> OPEData:
        """The estimator input for a target policy's pmfs `pi_e` (n, K); `q_hat` the reward
        model, `q_hat_dr` the one DR and SNDR read when given (`cross_fit(weighting="mrdr")`)."""
        pi_e = np.asarray(pi_e, dtype=np.float64)
        if pi_e.shape != self.pi_b.shape:
            raise ValueError(f"pi_e must be {self.pi_b.shape} like the log; got {pi_e.shape}")
        if (pi_e[~self.mask] > 0.0).any():
            raise ValueError("pi_e puts probability on padding: an action a row did not offer")
        return OPEData(
            reward=self.reward,
            action=self.action,
            pscore=self.pscore,
            pi_e=pi_e,
            q_hat=q_hat,
            group=self.group if self.is_multislot else None,
            stratum=self.slot if self.is_multislot else None,
            q_hat_dr=q_hat_dr,
        )

    def true_value(self, pi_e: np.ndarray) -> float:
        """Ground truth on these contexts (simulators): mean over decisions of the
        slots' Σ_a π(a|x) q(x, a)."""
        if self.expected_reward is None:
            raise ValueError(
                "this log has no ground truth (expected_reward); only simulator runs do"
            )
        per_row = np.einsum("ij,ij->i", np.asarray(pi_e, dtype=np.float64), self.expected_reward)
        n_decisions = int(self.decision_index().max()) + 1 if self.n else 1
        return float(per_row.sum() / n_decisions)

    def take(self, rows: np.ndarray | Sequence[int]) -> LoggedBandit:
        """A sub-log of the given rows (in that order); multi-slot groups are renumbered."""
        idx = np.asarray(rows, dtype=np.intp)
        features = self.features
        group = None
        if self.group is not None:
            _, group = np.unique(self.group[idx], return_inverse=True)

        def sub(a: Any) -> Any:
            return None if a is None else a[idx]

        return LoggedBandit(
            action=self.action[idx],
            reward=self.reward[idx],
            pscore=self.pscore[idx],
            pi_b=self.pi_b[idx],
            n_offered=self.n_offered[idx],
            event_id=[self.event_id[i] for i in idx],
            action_ids=None if self.action_ids is None else [self.action_ids[i] for i in idx],
            features=None if features is None else (lambda i: features(int(idx[i]))),
            slot=sub(self.slot),
            slot_names=self.slot_names,
            group=group,
            timestamp=sub(self.timestamp),
            expected_reward=sub(self.expected_reward),
            context=sub(self.context),
            source=self.source,
        )

    # --- interop ------------------------------------------------------------------

    def action_vocabulary(self) -> tuple[list[str], np.ndarray]:
        """All action ids seen in the log, and (n, K) each row's actions as indices into it
        (−1 on padding)."""
        if self.action_ids is None:
            positions = np.broadcast_to(np.arange(self.n_actions), self.pi_b.shape)
            return [str(k) for k in range(self.n_actions)], np.where(self.mask, positions, -1)
        vocab: dict[str, int] = {}
        index = np.full(self.pi_b.shape, -1, dtype=np.intp)
        for i in range(self.n):
            for k, a in enumerate(self.ids(i)):
                index[i, k] = vocab.setdefault(a, len(vocab))
        return list(vocab), index

    def to_obp_bandit_feedback(self, context_dim: int = 32) -> dict[str, Any]:
        """Open Bandit Pipeline's `bandit_feedback` dict, to cross-check with that library.

        Actions are renumbered over every action id in the log (`action_ids` key), so rows
        with different candidate sets share one action space; `pi_b` (n, n_actions,
        len_list) is zero where a row did not offer an action, and repeats each row's pmf at
        every position (obp reads a row's own position and checks every position's entry is
        a distribution). `position` is the slot index. `context` is the dense context when
        the log has one, else a hashed context vector. `importers.from_obp` reads it back.
        """
        from .obp import obp_bandit_feedback

        return obp_bandit_feedback(self, context_dim)
