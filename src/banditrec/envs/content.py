"""Content recommendation: users with latent topic interests, items with a topic and a quality.

Click model (logistic): P(click | user u, item i, position k)
    = bias[k] · σ(b + w_interest · T · u[topic_i] + w_quality · quality_i − w_long · mobile · long_i)
with `bias[k] = (k + 1)^−η` the position bias of a ranked list (1 at the top), T the number
of topics (so T · u averages 1) and u the user's interest distribution over topics.

The world moves: each user's interests drift slowly (a random walk in log space, applied
when the user shows up), and new items keep arriving and replacing the oldest ones, so
part of every candidate set is always cold. The user features a policy sees are their
current interests with a little noise; an item shows its topic, a noisy quality signal
(the editor's score) and whether it is a long read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from .base import (
    ActionSpec,
    BanditBatch,
    BanditEnv,
    Context,
    check_params,
    choose_k,
    make_params,
    sigmoid,
)

QUALITY_CLIP = 10.0  # bound of the editor's score in the numeric observation


@dataclass(frozen=True)
class ContentParams:
    n_users: int = 1000
    n_topics: int = 8
    pool_size: int = 200
    n_candidates: int = 20
    interest_concentration: float = 0.5  # Dirichlet: small → users with a few strong interests
    click_bias: float = -3.0
    interest_weight: float = 0.6  # times T · u[topic]
    quality_weight: float = 0.5
    long_read_penalty_mobile: float = 0.8
    quality_signal_noise: float = 0.3  # sd of the editor's score around the true quality
    interest_signal_noise: float = 0.02  # sd of the observed interests around the true ones
    drift: float = 0.003  # sd per step of a user's log-interests
    arrival_every: float = 20.0  # mean steps between two new items
    position_decay: float = 1.0  # η of the position bias

    def __post_init__(self) -> None:
        check_params(
            self,
            signed=("click_bias",),
            positive=("n_users", "n_topics", "pool_size", "n_candidates"),
        )
        if self.n_candidates > self.pool_size:
            raise ValueError(
                f"n_candidates ({self.n_candidates}) cannot exceed pool_size ({self.pool_size})"
            )


class ContentEnv(BanditEnv):
    """`banditrec/Content-v0`. Also takes a ranked list in `step` (see `step`)."""

    def __init__(self, **params: Any) -> None:
        super().__init__()
        self.params = make_params(ContentParams, params)
        p = self.params
        t = p.n_topics
        self.position_bias = 1.0 / np.arange(1, p.n_candidates + 1) ** p.position_decay
        self.action_space = spaces.Discrete(p.n_candidates)
        self.observation_space = spaces.Dict(
            {
                # the user's observed interests and whether they are on mobile
                "context": spaces.Box(0.0, 1.0, shape=(t + 1,), dtype=np.float32),
                # per candidate: topic one-hot, editor's score, long read
                "actions": spaces.Box(
                    -QUALITY_CLIP, QUALITY_CLIP, shape=(p.n_candidates, t + 2), dtype=np.float32
                ),
            }
        )
        self._topic_names = [f"t{j}" for j in range(t)]

    # --- world ------------------------------------------------------------------------

    def _build_world(self, rng: np.random.Generator) -> None:
        p = self.params
        self._world_rng = rng
        self._interests = rng.dirichlet(
            np.full(p.n_topics, p.interest_concentration), size=p.n_users
        )
        self._mobile = rng.random(p.n_users) < 0.6
        self._last_seen = np.zeros(p.n_users, dtype=np.int64)
        self._item_serial = np.arange(p.pool_size, dtype=np.int64)
        self._topic = rng.integers(p.n_topics, size=p.pool_size)
        self._quality = rng.standard_normal(p.pool_size)
        self._quality_signal = self._quality + p.quality_signal_noise * rng.standard_normal(
            p.pool_size
        )
        self._long = rng.random(p.pool_size) < 0.3
        self._next_serial = p.pool_size
        self._arrived: dict[int, int] = {}  # serial → the step a new item arrived
        self._oldest = 0
        self._t = 0
        self._next_arrival = rng.exponential(p.arrival_every) if p.arrival_every > 0 else np.inf

    def _arrive(self, rng: np.random.Generator) -> None:
        """A new item replaces the oldest one in the pool."""
        p = self.params
        slot = self._oldest
        self._arrived.pop(int(self._item_serial[slot]), None)
        self._item_serial[slot] = self._next_serial
        self._topic[slot] = rng.integers(p.n_topics)
        self._quality[slot] = rng.standard_normal()
        self._quality_signal[slot] = (
            self._quality[slot] + p.quality_signal_noise * rng.standard_normal()
        )
        self._long[slot] = rng.random() < 0.3
        self._arrived[self._next_serial] = self._t
        self._next_serial += 1
        self._oldest = (slot + 1) % p.pool_size

    def _drift_user(self, user: int, rng: np.random.Generator) -> None:
        elapsed = self._t - self._last_seen[user]
        if elapsed > 0 and self.params.drift > 0:
            step = self.params.drift * np.sqrt(elapsed) * rng.standard_normal(self.params.n_topics)
            u = self._interests[user] * np.exp(step)
            self._interests[user] = u / u.sum()
        self._last_seen[user] = self._t

    def _next_context(self, rng: np.random.Generator) -> BanditBatch:
        self._t += 1
        while self._t >= self._next_arrival:
            self._arrive(rng)
            self._next_arrival += rng.exponential(self.params.arrival_every)
        user = int(rng.integers(self.params.n_users))
        self._drift_user(user, rng)
        return self._contexts(np.array([user]), rng)

    def sample_batch(self, n: int, rng: np.random.Generator) -> BanditBatch:
        return self._contexts(rng.integers(self.params.n_users, size=n), rng)

    # --- contexts -------------------------------------------------------------------

    def _contexts(self, users: np.ndarray, rng: np.random.Generator) -> BanditBatch:
        p = self.params
        n = len(users)
        cand = choose_k(rng, n, p.pool_size, p.n_candidates)  # (n, K) pool slots
        interests = self._interests[users]  # (n, T)
        noisy = interests + p.interest_signal_noise * rng.standard_normal(interests.shape)
        observed = np.minimum(np.maximum(noisy, 0.0), 1.0)  # np.clip is slow on small arrays
        mobile = self._mobile[users]
        topic = self._topic[cand]
        long_read = self._long[cand]
        logit = (
            p.click_bias
            + p.interest_weight * p.n_topics * interests[np.arange(n)[:, None], topic]
            + p.quality_weight * self._quality[cand]
            - p.long_read_penalty_mobile * (mobile[:, None] & long_read)
        )
        view = _ContentView(
            topic_names=self._topic_names,
            observed=observed,
            mobile=mobile,
            serial=self._item_serial[cand],
            topic=topic,
            quality_signal=self._quality_signal[cand],
            long_read=long_read,
        )
        return BanditBatch(sigmoid(logit), 1.0, 0.0, describe=view.describe, observe=view.observe)

    # --- ranked lists ---------------------------------------------------------------

    def slate_expected_reward(self, order: Sequence[int]) -> float:
        """Expected clicks on the current context's candidates shown in `order` (top first)."""
        order = self._check_order(order)
        p = self.current.success_prob[0]
        return float(np.sum(self.position_bias[: len(order)] * p[order]))

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """`action` is a candidate index (shown alone, at the top) or a ranked list of indices.

        For a list, the reward is the number of clicks: each shown item at position k is
        clicked independently with probability bias[k] · P(click at the top).
        """
        if np.ndim(action) == 0:
            return super().step(action)
        batch = self._require_reset()
        order = self._check_order(action)
        p = batch.success_prob[0][order] * self.position_bias[: len(order)]
        clicks = self._rewards_rng.random(len(order)) < p
        reward = float(np.sum(clicks))
        q_slate = float(np.sum(p))
        q_best = float(
            np.sum(
                np.sort(batch.success_prob[0])[::-1][: len(order)]
                * self.position_bias[: len(order)]
            )
        )
        self._current = self._next_context(self._contexts_rng)
        info = self._info(self._current)
        info["taken"] = {
            "expected_reward": q_slate,
            "regret": q_best - q_slate,
            "clicks": clicks.astype(float).tolist(),  # per position, top first
        }
        return self._current.observation(0), reward, False, False, info

    def candidate_groups(self, n_groups: int) -> list[str]:
        """The current candidates' creators (item serial mod `n_groups`): item groups for
        slates' rules and exposure floors."""
        serial = self._item_serial_of_current()
        return [f"creator-{s % n_groups}" for s in serial]

    def candidate_ages(self) -> list[float]:
        """Steps since each current candidate arrived (the first pool's items: since step 0)."""
        serial = self._item_serial_of_current()
        pool = self.params.pool_size
        return [
            float(self._t - self._arrived.get(s, 0)) if s >= pool else float(self._t)
            for s in serial
        ]

    def _item_serial_of_current(self) -> list[int]:
        view = self._require_reset().describe
        _, actions = view(0)
        return [int(a["id"].split("-")[1]) for a in actions]

    def _check_order(self, order: Sequence[int]) -> np.ndarray:
        k = self.params.n_candidates
        arr = np.asarray(order)
        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer) or len(arr) == 0:
            raise ValueError(
                f"a ranked list must be a non-empty sequence of candidate indices, got {order!r}"
            )
        if arr.min() < 0 or arr.max() >= k or len(set(arr.tolist())) != len(arr):
            raise ValueError(
                f"a ranked list must hold distinct candidate indices in [0, {k}), got {order!r}"
            )
        return arr


@dataclass(frozen=True, eq=False)
class _ContentView:
    """Snapshot of a batch's raw arrays; rows become API dicts only when asked for."""

    topic_names: list[str]
    observed: np.ndarray
    mobile: np.ndarray
    serial: np.ndarray
    topic: np.ndarray
    quality_signal: np.ndarray
    long_read: np.ndarray

    def describe(self, i: int) -> tuple[Context, list[ActionSpec]]:
        names = self.topic_names
        user: dict[str, Any] = dict(zip(names, np.round(self.observed[i], 3).tolist(), strict=True))
        user["mobile"] = bool(self.mobile[i])
        actions = [
            {
                "id": f"item-{serial}",
                "features": {"topic": {names[t]: 1.0}, "item": {"quality": q, "long": bool(lr)}},
            }
            for serial, t, q, lr in zip(
                self.serial[i].tolist(),
                self.topic[i].tolist(),
                np.round(self.quality_signal[i], 3).tolist(),
                self.long_read[i].tolist(),
                strict=True,
            )
        ]
        return {"user": user}, actions

    def observe(self, i: int) -> dict[str, np.ndarray]:
        t = len(self.topic_names)
        context = np.append(self.observed[i], float(self.mobile[i])).astype(np.float32)
        k = self.topic.shape[1]
        actions = np.zeros((k, t + 2), dtype=np.float32)
        actions[np.arange(k), self.topic[i]] = 1.0
        actions[:, t] = np.minimum(np.maximum(self.quality_signal[i], -QUALITY_CLIP), QUALITY_CLIP)
        actions[:, t + 1] = self.long_read[i]
        return {"context": context, "actions": actions}
