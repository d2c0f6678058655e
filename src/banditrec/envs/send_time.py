"""Send time: when in the day to send a user a message so that they open it.

Each user has an hourly activity profile over hour-of-day × weekday: a mix of a few
archetypes (early bird, commuter, office hours, evening, night owl, weekender), scaled by
how active they are and shifted by up to an hour. λ(d, h) is the chance they look at
their messages in hour h of day d. The reward is 1 when a message sent at hour h is
opened within `window_hours`:
    P(open | send at d, h) = 1 − Π_{j < window} (1 − λ(d, h + j))   (wrapping into the next day).

A policy sees the day of the week and the user's open history: the share of their past
opens in each four-hour block and on weekends, and how often they open, all noisy
summaries of the profile, never the profile itself. The actions are the 24 hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from .base import ActionSpec, BanditBatch, BanditEnv, Context, check_params, make_params

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HOURS = 24
BLOCKS = tuple(f"b{h:02d}_{h + 4:02d}" for h in range(0, HOURS, 4))
ARCHETYPES = ("early_bird", "commuter", "office", "evening", "night_owl", "weekender")

# (centre hour, width in hours, height) of each activity bump, on weekdays and weekends.
_BUMPS: dict[str, tuple[list[tuple[float, float, float]], list[tuple[float, float, float]]]] = {
    "early_bird": (
        [(6.5, 1.0, 0.5), (12.0, 1.0, 0.15), (19.5, 1.5, 0.12)],
        [(8.0, 1.5, 0.4), (13.0, 2.0, 0.15)],
    ),
    "commuter": ([(8.0, 0.8, 0.45), (18.0, 1.0, 0.45)], [(11.0, 2.0, 0.3), (20.0, 2.0, 0.25)]),
    "office": ([(10.0, 1.0, 0.25), (13.0, 0.8, 0.45), (15.5, 1.0, 0.25)], [(12.0, 3.0, 0.15)]),
    "evening": ([(20.5, 1.3, 0.5), (12.5, 1.0, 0.12)], [(21.0, 1.5, 0.5), (15.0, 2.0, 0.2)]),
    "night_owl": ([(23.5, 1.2, 0.5), (1.5, 1.0, 0.3)], [(0.5, 1.5, 0.5), (14.0, 2.0, 0.2)]),
    "weekender": ([(19.0, 2.0, 0.12)], [(10.0, 1.5, 0.5), (16.0, 1.5, 0.4)]),
}


def _profile(
    weekday: list[tuple[float, float, float]], weekend: list[tuple[float, float, float]]
) -> np.ndarray:
    hours = np.arange(HOURS) + 0.5

    def day(bumps: list[tuple[float, float, float]]) -> np.ndarray:
        out = np.full(HOURS, 0.02)
        out[2:6] = 0.005  # almost nobody reads at 2-6 am
        for centre, width, height in bumps:
            dist = np.abs(hours - centre)
            dist = np.minimum(dist, HOURS - dist)  # the clock wraps at midnight
            out += height * np.exp(-0.5 * (dist / width) ** 2)
        return out

    return np.stack([day(weekday)] * 5 + [day(weekend)] * 2)  # (7, 24)


ARCHETYPE_PROFILES = np.stack([_profile(*_BUMPS[a]) for a in ARCHETYPES])  # (A, 7, 24)


@dataclass(frozen=True)
class SendTimeParams:
    n_users: int = 1000
    window_hours: int = 3
    steps_per_day: int = 200  # the weekday advances after this many sends
    activity_sd: float = 0.3  # lognormal spread of how active users are
    archetype_purity: float = 0.8  # weight of a user's main archetype in their mix
    history_opens: float = 100.0  # how many past opens the history shares summarize

    def __post_init__(self) -> None:
        check_params(self, positive=("n_users", "window_hours", "steps_per_day", "history_opens"))
        if not 0.0 <= self.archetype_purity <= 1.0:
            raise ValueError(
                f"SendTimeParams.archetype_purity must be in [0, 1], got {self.archetype_purity}"
            )


class SendTimeEnv(BanditEnv):
    """`banditrec/SendTime-v0`."""

    def __init__(self, **params: Any) -> None:
        super().__init__()
        self.params = make_params(SendTimeParams, params)
        n_context = len(BLOCKS) + 2 + len(WEEKDAYS)
        self.action_space = spaces.Discrete(HOURS)
        self.observation_space = spaces.Dict(
            {
                # open-history block shares, weekend share, opens per week / 100, weekday one-hot
                "context": spaces.Box(0.0, 5.0, shape=(n_context,), dtype=np.float32),
                # hour one-hot and block one-hot
                "actions": spaces.Box(
                    0.0, 1.0, shape=(HOURS, HOURS + len(BLOCKS)), dtype=np.float32
                ),
            }
        )
        self._actions: list[ActionSpec] = [
            {"id": f"h{h:02d}", "features": {"hour": {f"h{h:02d}": 1.0, BLOCKS[h // 4]: 1.0}}}
            for h in range(HOURS)
        ]
        block_one_hot = np.eye(len(BLOCKS))[np.arange(HOURS) // 4]
        self._action_obs = np.hstack([np.eye(HOURS), block_one_hot]).astype(np.float32)

    def _build_world(self, rng: np.random.Generator) -> None:
        p = self.params
        n, a = p.n_users, len(ARCHETYPES)
        main = rng.integers(a, size=n)
        mix = (1.0 - p.archetype_purity) * rng.dirichlet(np.ones(a), size=n)
        mix[np.arange(n), main] += p.archetype_purity
        level = np.exp(p.activity_sd * rng.standard_normal(n))
        activity = level[:, None, None] * np.einsum("ua,adh->udh", mix, ARCHETYPE_PROFILES)
        shift = rng.integers(-1, 2, size=n)
        flat = activity.reshape(n, -1)  # hours of the week, so a shift crosses midnight correctly
        rows = (np.arange(flat.shape[1])[None, :] - shift[:, None]) % flat.shape[1]
        activity = np.take_along_axis(flat, rows, axis=1).reshape(n, len(WEEKDAYS), HOURS)
        self.activity = np.clip(activity, 0.0, 0.95)  # λ(u, d, h)
        self.main_archetype = main
        self._open_prob = self._open_within_window(self.activity)
        # What the product knows: shares of ~history_opens past opens (a Dirichlet draw
        # around the true shares, as if counted from a finite history).
        blocks = self.activity.reshape(n, len(WEEKDAYS), len(BLOCKS), 4).sum(axis=(1, 3))
        shares = blocks / blocks.sum(axis=1, keepdims=True)
        self._block_share = np.array([rng.dirichlet(p.history_opens * s + 1e-3) for s in shares])
        weekend = self.activity[:, 5:].sum(axis=(1, 2)) / self.activity.sum(axis=(1, 2))
        self._weekend_share = rng.beta(
            p.history_opens * weekend + 1e-3, p.history_opens * (1.0 - weekend) + 1e-3
        )
        self._opens_per_week = rng.poisson(self.activity.sum(axis=(1, 2))).astype(float)
        self._t = 0

    def _open_within_window(self, activity: np.ndarray) -> np.ndarray:
        n = activity.shape[0]
        week = activity.reshape(n, -1)  # (n, 168): the window wraps into the next day and week
        miss = np.ones_like(week)
        for j in range(self.params.window_hours):
            miss *= 1.0 - np.roll(week, -j, axis=1)
        return (1.0 - miss).reshape(n, len(WEEKDAYS), HOURS)

    def _next_context(self, rng: np.random.Generator) -> BanditBatch:
        day = (self._t // self.params.steps_per_day) % len(WEEKDAYS)
        self._t += 1
        return self.contexts_for(rng.integers(self.params.n_users, size=1), np.array([day]))

    def sample_batch(self, n: int, rng: np.random.Generator) -> BanditBatch:
        users = rng.integers(self.params.n_users, size=n)
        return self.contexts_for(users, rng.integers(len(WEEKDAYS), size=n))

    def contexts_for(self, users: np.ndarray, days: np.ndarray) -> BanditBatch:
        """The contexts of given users (indices) on given weekdays (0 = Monday)."""
        view = _SendTimeView(
            block_share=self._block_share[users],
            weekend_share=self._weekend_share[users],
            opens_per_week=self._opens_per_week[users],
            days=days,
            actions=self._actions,
            action_obs=self._action_obs,
        )
        return BanditBatch(
            self._open_prob[users, days], 1.0, 0.0, describe=view.describe, observe=view.observe
        )


@dataclass(frozen=True, eq=False)
class _SendTimeView:
    block_share: np.ndarray
    weekend_share: np.ndarray
    opens_per_week: np.ndarray
    days: np.ndarray
    actions: list[ActionSpec]
    action_obs: np.ndarray

    def describe(self, i: int) -> tuple[Context, list[ActionSpec]]:
        user: dict[str, Any] = dict(
            zip(BLOCKS, np.round(self.block_share[i], 3).tolist(), strict=True)
        )
        user["weekend_share"] = round(float(self.weekend_share[i]), 3)
        user["opens_per_week"] = float(self.opens_per_week[i])
        day = int(self.days[i])
        context: Context = {"user": user, "day": {"weekday": WEEKDAYS[day], "weekend": day >= 5}}
        return context, [
            {"id": a["id"], "features": {"hour": dict(a["features"]["hour"])}} for a in self.actions
        ]

    def observe(self, i: int) -> dict[str, np.ndarray]:
        day = np.zeros(len(WEEKDAYS))
        day[self.days[i]] = 1.0
        context = np.concatenate(
            [
                self.block_share[i],
                [self.weekend_share[i], min(self.opens_per_week[i] / 100.0, 5.0)],
                day,
            ]
        ).astype(np.float32)
        return {"context": context, "actions": self.action_obs.copy()}
