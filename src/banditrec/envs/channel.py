"""Channel choice: reach a user by email, push, SMS or in-app message.

Reward = conversion value · 1[converted] − the channel's cost, with
    P(convert | user u, channel c) = σ(base_c + r_uc − w_f · (f_uc + w_x · Σ_{c'≠c} f_uc'))
where r_uc is the user's responsiveness to the channel (their age band and platform plus
a personal part no feature reveals) and f_uc their fatigue: every send adds 1 to f_uc,
which then halves every `fatigue_half_life_hours`. Sends on other channels tire too, a
little. Web users cannot get push and rarely see in-app messages.

Users arrive one at a time (each step moves the clock by `hours_per_step`) and see their
current fatigue in the context, so the best channel depends on what was sent lately: the
env remembers the policy's own sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from .base import ActionSpec, BanditBatch, BanditEnv, Context, check_params, make_params, sigmoid

CHANNELS = ("email", "push", "sms", "in_app")
AGE_BANDS = ("18-24", "25-34", "35-49", "50+")
PLATFORMS = ("ios", "android", "web")
TIER_VALUES = (0.5, 1.0, 2.0)  # conversion value of the user's tier
FATIGUE_CLIP = 100.0  # bound of fatigue in the numeric observation

# Responsiveness (logit) by age band × channel and platform × channel.
_AGE_EFFECT = np.array(
    [
        [-0.6, 0.5, -0.4, 0.4],
        [-0.2, 0.3, 0.0, 0.2],
        [0.3, -0.1, 0.2, -0.2],
        [0.6, -0.6, 0.5, -0.6],
    ]
)
_PLATFORM_EFFECT = np.array(
    [
        [0.0, 0.3, 0.0, 0.3],
        [0.0, 0.1, 0.1, 0.2],
        [0.2, -6.0, 0.0, -1.5],  # no push on the web; in-app only when they open the site
    ]
)


@dataclass(frozen=True)
class ChannelParams:
    n_users: int = 500
    costs: tuple[float, float, float, float] = (0.01, 0.005, 0.06, 0.0)
    base_logit: tuple[float, float, float, float] = (-2.2, -2.0, -1.4, -2.8)
    personal_responsiveness_sd: float = 0.5
    fatigue_weight: float = 0.7
    cross_fatigue: float = 0.3
    fatigue_half_life_hours: float = 48.0
    hours_per_step: float = 0.2  # with 500 users, a user comes back every ~4 days

    def __post_init__(self) -> None:
        check_params(self, positive=("n_users", "fatigue_half_life_hours"))
        for name in ("costs", "base_logit"):
            if len(getattr(self, name)) != len(CHANNELS):
                raise ValueError(f"ChannelParams.{name} needs one value per channel {CHANNELS}")


class ChannelEnv(BanditEnv):
    """`banditrec/Channel-v0`."""

    def __init__(self, **params: Any) -> None:
        super().__init__()
        self.params = make_params(ChannelParams, params)
        k = len(CHANNELS)
        self.action_space = spaces.Discrete(k)
        n_context = len(AGE_BANDS) + len(PLATFORMS) + 1 + k
        self.observation_space = spaces.Dict(
            {
                # age band and platform one-hot, conversion value, fatigue per channel
                "context": spaces.Box(0.0, FATIGUE_CLIP, shape=(n_context,), dtype=np.float32),
                # channel one-hot and its cost
                "actions": spaces.Box(
                    0.0, max(1.0, *self.params.costs), shape=(k, k + 1), dtype=np.float32
                ),
            }
        )
        self._costs = np.asarray(self.params.costs, dtype=np.float64)
        self._action_obs = np.hstack([np.eye(k), self._costs[:, None]]).astype(np.float32)
        self._actions: list[ActionSpec] = [
            {"id": c, "features": {"channel": {"name": c, "cost": cost}}}
            for c, cost in zip(CHANNELS, self.params.costs, strict=True)
        ]

    @property
    def channels(self) -> tuple[str, ...]:
        return CHANNELS

    def _build_world(self, rng: np.random.Generator) -> None:
        p = self.params
        self._age = rng.choice(len(AGE_BANDS), size=p.n_users, p=[0.2, 0.35, 0.3, 0.15])
        self._platform = rng.choice(len(PLATFORMS), size=p.n_users, p=[0.4, 0.4, 0.2])
        self._tier = rng.choice(len(TIER_VALUES), size=p.n_users, p=[0.5, 0.35, 0.15])
        personal = p.personal_responsiveness_sd * rng.standard_normal((p.n_users, len(CHANNELS)))
        self._responsiveness = (
            np.asarray(p.base_logit)
            + _AGE_EFFECT[self._age]
            + _PLATFORM_EFFECT[self._platform]
            + personal
        )
        self._fatigue = np.zeros((p.n_users, len(CHANNELS)))
        self._fatigue_at = np.zeros(p.n_users)  # clock (hours) of each user's fatigue values
        self._hours = 0.0

    def _fatigue_now(self, users: np.ndarray) -> np.ndarray:
        elapsed = self._hours - self._fatigue_at[users]
        return (
            self._fatigue[users] * (0.5 ** (elapsed / self.params.fatigue_half_life_hours))[:, None]
        )

    def _next_context(self, rng: np.random.Generator) -> BanditBatch:
        self._hours += self.params.hours_per_step
        self._user = int(rng.integers(self.params.n_users))
        return self._contexts(np.array([self._user]))

    def sample_batch(self, n: int, rng: np.random.Generator) -> BanditBatch:
        return self._contexts(rng.integers(self.params.n_users, size=n))

    def _after_step(self, batch: BanditBatch, action: int, reward: float) -> None:
        user = self._user
        fatigue = self._fatigue_now(np.array([user]))[0]
        fatigue[action] += 1.0
        self._fatigue[user] = fatigue
        self._fatigue_at[user] = self._hours

    def _contexts(self, users: np.ndarray) -> BanditBatch:
        p = self.params
        fatigue = self._fatigue_now(users)
        others = fatigue.sum(axis=1, keepdims=True) - fatigue
        logit = self._responsiveness[users] - p.fatigue_weight * (
            fatigue + p.cross_fatigue * others
        )
        value = np.asarray(TIER_VALUES)[self._tier[users]][:, None]
        view = _ChannelView(
            age=self._age[users],
            platform=self._platform[users],
            tier=self._tier[users],
            fatigue=fatigue,
            actions=self._actions,
            action_obs=self._action_obs,
        )
        return BanditBatch(
            sigmoid(logit),
            value,
            -self._costs[None, :],
            describe=view.describe,
            observe=view.observe,
        )


@dataclass(frozen=True, eq=False)
class _ChannelView:
    age: np.ndarray
    platform: np.ndarray
    tier: np.ndarray
    fatigue: np.ndarray
    actions: list[ActionSpec]
    action_obs: np.ndarray

    def describe(self, i: int) -> tuple[Context, list[ActionSpec]]:
        context: Context = {
            "user": {
                "age": AGE_BANDS[self.age[i]],
                "platform": PLATFORMS[self.platform[i]],
                "value": TIER_VALUES[self.tier[i]],
            },
            "fatigue": dict(zip(CHANNELS, np.round(self.fatigue[i], 3).tolist(), strict=True)),
        }
        return context, [
            {"id": a["id"], "features": {"channel": dict(a["features"]["channel"])}}
            for a in self.actions
        ]

    def observe(self, i: int) -> dict[str, np.ndarray]:
        context = np.zeros(len(AGE_BANDS) + len(PLATFORMS) + 1 + len(CHANNELS), dtype=np.float32)
        context[self.age[i]] = 1.0
        context[len(AGE_BANDS) + self.platform[i]] = 1.0
        context[len(AGE_BANDS) + len(PLATFORMS)] = TIER_VALUES[self.tier[i]]
        context[-len(CHANNELS) :] = np.minimum(self.fatigue[i], FATIGUE_CLIP)
        return {"context": context, "actions": self.action_obs.copy()}
