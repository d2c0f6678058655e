"""An engagement journey: the sequential (reinforcement-learning) case.

An episode is one user's journey, one step per day, for up to `horizon` days. Each day
the product sends a piece of content (a tip or an offer) on a channel (email, push, SMS)
at a time of day (morning, evening), or does nothing. A send converts with probability
    σ(base[content] + r[channel] + timing bonus + w_e · (engagement − ½) − w_f · fatigue),
earning value[content] · the user's value − the channel's cost. Every send adds fatigue
(which decays by a factor each day); sending to a tired user erodes their engagement,
a converted tip builds it; and each day the user may churn (the episode ends) with
hazard σ(c₀ + c_f · fatigue − c_e · engagement). The send with the best immediate
expected reward is therefore not the best in the long run: a myopic policy keeps
sending, tires the user out and loses them.

Observation: a flat float32 vector (see `OBS_FIELDS`) for RL learners; `info` carries the
same state as a bandit context (`context`, `actions`, immediate `expected_rewards`).
`monte_carlo_value` (envs/journey_value.py) estimates the true expected return of any policy.

All dynamics are written once, vectorized over users (`JourneyDynamics`); the Gymnasium
env runs them for one user, `monte_carlo_value` for thousands at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from .base import ActionSpec, action_index, check_params, make_params, sigmoid

CHANNELS = ("email", "push", "sms")
CONTENTS = ("tip", "offer")
TIMINGS = ("morning", "evening")
REST = "rest"
ACTION_IDS: tuple[str, ...] = (
    REST,
    *(f"{ch}_{co}_{ti}" for ch in CHANNELS for co in CONTENTS for ti in TIMINGS),
)
# For action index a ≥ 1: its channel, content and timing indices.
_CHANNEL = np.array([-1] + [c for c in range(3) for _ in range(4)])
_CONTENT = np.array([-1] + [k for _ in range(3) for k in range(2) for _ in range(2)])
_TIMING = np.array([-1] + [t for _ in range(6) for t in range(2)])

OBS_FIELDS = (
    "engagement",
    "fatigue",
    "days_since_contact",  # / 30, capped at 1
    "progress",  # day / horizon
    "resp_email",
    "resp_push",
    "resp_sms",
    "prefers_morning",
    "value",
)
FATIGUE = OBS_FIELDS.index("fatigue")


@dataclass(frozen=True)
class JourneyParams:
    horizon: int = 60
    content_value: tuple[float, float] = (0.3, 1.0)  # tip, offer
    content_logit: tuple[float, float] = (-1.0, -2.0)
    channel_cost: tuple[float, float, float] = (0.005, 0.0, 0.04)
    channel_fatigue: tuple[float, float, float] = (0.6, 0.8, 1.2)
    responsiveness_sd: float = 0.5
    timing_bonus: float = 0.5
    engagement_weight: float = 2.5
    fatigue_weight: float = 0.3
    fatigue_decay: float = 0.7  # share of fatigue left the next day
    tip_engagement_gain: float = 0.1
    offer_engagement_gain: float = 0.03
    annoyance: float = 0.04  # engagement lost per send and unit of fatigue above 1
    engagement_baseline: float = 0.4
    engagement_reversion: float = 0.02  # daily pull towards the baseline
    churn_bias: float = -6.0
    churn_fatigue: float = 1.0
    churn_engagement: float = 3.0

    def __post_init__(self) -> None:
        check_params(self, signed=("content_logit", "churn_bias"), positive=("horizon",))
        if not 0.0 <= self.fatigue_decay < 1.0:
            raise ValueError(
                f"JourneyParams.fatigue_decay must be in [0, 1), got {self.fatigue_decay}"
            )


@dataclass(eq=False)
class JourneyState:
    """n users' journeys; every field is an (n,) array (responsiveness (n, 3))."""

    engagement: np.ndarray
    fatigue: np.ndarray
    days_since: np.ndarray
    day: np.ndarray
    alive: np.ndarray
    responsiveness: np.ndarray
    prefers_morning: np.ndarray
    value: np.ndarray

    def __len__(self) -> int:
        return len(self.engagement)


@dataclass(frozen=True)
class JourneyDynamics:
    """The journey's model, vectorized over users."""

    params: JourneyParams = field(default_factory=JourneyParams)

    def new_users(self, n: int, rng: np.random.Generator) -> JourneyState:
        p = self.params
        return JourneyState(
            engagement=np.clip(rng.normal(p.engagement_baseline, 0.1, n), 0.05, 0.95),
            fatigue=np.zeros(n),
            days_since=np.full(n, 30.0),
            day=np.zeros(n, dtype=np.int64),
            alive=np.ones(n, dtype=bool),
            responsiveness=np.clip(
                p.responsiveness_sd * rng.standard_normal((n, len(CHANNELS))), -3.0, 3.0
            ),
            prefers_morning=rng.random(n) < 0.5,
            value=rng.choice([0.5, 1.0, 2.0], size=n, p=[0.5, 0.35, 0.15]),
        )

    def conversion_prob(self, s: JourneyState) -> np.ndarray:
        """(n, A): P(convert) of every action; 0 for rest."""
        p = self.params
        content = np.asarray(p.content_logit)[_CONTENT[1:]]
        resp = s.responsiveness[:, _CHANNEL[1:]]
        timing_match = (_TIMING[1:][None, :] == 0) == s.prefers_morning[:, None]
        logit = (
            content[None, :]
            + resp
            + p.timing_bonus * timing_match
            + p.engagement_weight * (s.engagement[:, None] - 0.5)
            - p.fatigue_weight * s.fatigue[:, None]
        )
        return np.hstack([np.zeros((len(s), 1)), sigmoid(logit)])

    def expected_rewards(self, s: JourneyState, conversion: np.ndarray | None = None) -> np.ndarray:
        """(n, A): immediate expected reward of every action; 0 for rest."""
        conversion = self.conversion_prob(s) if conversion is None else conversion
        value, cost = self._value_and_cost(s)
        return conversion * value - cost

    def _value_and_cost(self, s: JourneyState) -> tuple[np.ndarray, np.ndarray]:
        p = self.params
        value = (
            np.concatenate([[0.0], np.asarray(p.content_value)[_CONTENT[1:]]])[None, :]
            * s.value[:, None]
        )
        cost = np.concatenate([[0.0], np.asarray(p.channel_cost)[_CHANNEL[1:]]])[None, :]
        return value, cost

    def step(
        self, s: JourneyState, actions: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Play `actions` for every live user, in place: (reward, expected reward, churned)."""
        p = self.params
        rows = np.arange(len(s))
        conversion = self.conversion_prob(s)
        value, cost = self._value_and_cost(s)
        expected = (conversion * value - cost)[rows, actions]
        converted = rng.random(len(s)) < conversion[rows, actions]
        reward = converted * value[rows, actions] - cost[0, actions]
        sent = actions > 0
        channel = _CHANNEL[actions]
        content = _CONTENT[actions]
        added = np.where(sent, np.asarray(p.channel_fatigue)[channel], 0.0)
        s.fatigue = s.fatigue * p.fatigue_decay + added
        gain = np.where(content == 0, p.tip_engagement_gain, p.offer_engagement_gain)
        e = s.engagement + converted * gain * (1.0 - s.engagement)
        e = e - sent * p.annoyance * np.maximum(s.fatigue - 1.0, 0.0)
        e = e + p.engagement_reversion * (p.engagement_baseline - e)
        s.engagement = np.clip(e, 0.0, 1.0)
        s.days_since = np.where(sent, 0.0, s.days_since + 1.0)
        s.day = s.day + 1
        hazard = sigmoid(
            p.churn_bias + p.churn_fatigue * s.fatigue - p.churn_engagement * s.engagement
        )
        churned = s.alive & (rng.random(len(s)) < hazard)
        s.alive = s.alive & ~churned
        return np.where(s.alive | churned, reward, 0.0), expected, churned

    def observations(self, s: JourneyState) -> np.ndarray:
        return np.column_stack(
            [
                s.engagement,
                np.minimum(s.fatigue, 10.0),
                np.minimum(s.days_since, 30.0) / 30.0,
                s.day / self.params.horizon,
                s.responsiveness,
                s.prefers_morning,
                s.value,
            ]
        ).astype(np.float32)


_ACTION_SPECS: list[ActionSpec] = [{"id": REST, "features": {"channel": {"none": 1.0}}}] + [
    {
        "id": ACTION_IDS[a],
        "features": {
            "channel": {CHANNELS[_CHANNEL[a]]: 1.0},
            "content": {CONTENTS[_CONTENT[a]]: 1.0},
            "timing": {TIMINGS[_TIMING[a]]: 1.0},
        },
    }
    for a in range(1, len(ACTION_IDS))
]


class EngagementJourneyEnv(gym.Env[np.ndarray, np.int64]):
    """`banditrec/EngagementJourney-v0`: one user's journey per episode."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, **params: Any) -> None:
        self.params = make_params(JourneyParams, params)
        self.dynamics = JourneyDynamics(self.params)
        self.action_space = spaces.Discrete(len(ACTION_IDS))
        low = np.array([0, 0, 0, 0, -3, -3, -3, 0, 0], dtype=np.float32)
        high = np.array([1, 10, 1, 1, 3, 3, 3, 1, 2], dtype=np.float32)
        self.observation_space = spaces.Box(low, high, dtype=np.float32)
        self._state: JourneyState | None = None
        self._done = True

    @property
    def action_ids(self) -> tuple[str, ...]:
        return ACTION_IDS

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._state = self.dynamics.new_users(1, self.np_random)
        self._done = False
        return self._observation(), self._info()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._state is None or self._done:
            raise RuntimeError("the journey is over (or never started): call reset()")
        index = action_index(action, len(ACTION_IDS))
        reward, expected, churned = self.dynamics.step(
            self._state, np.array([index]), self.np_random
        )
        terminated = bool(churned[0])
        truncated = not terminated and int(self._state.day[0]) >= self.params.horizon
        self._done = terminated or truncated
        info = self._info()
        info["taken"] = {"expected_reward": float(expected[0]), "churned": terminated}
        return self._observation(), float(reward[0]), terminated, truncated, info

    def _observation(self) -> np.ndarray:
        assert self._state is not None
        return self.dynamics.observations(self._state)[0]

    def _info(self) -> dict[str, Any]:
        s = self._state
        assert s is not None
        context = {
            "user": {
                "resp_email": round(float(s.responsiveness[0, 0]), 3),
                "resp_push": round(float(s.responsiveness[0, 1]), 3),
                "resp_sms": round(float(s.responsiveness[0, 2]), 3),
                "prefers_morning": bool(s.prefers_morning[0]),
                "value": float(s.value[0]),
            },
            "journey": {
                "engagement": round(float(s.engagement[0]), 4),
                "fatigue": round(float(s.fatigue[0]), 4),
                "days_since_contact": float(s.days_since[0]),
                "day": int(s.day[0]),
            },
        }
        actions = [
            {"id": a["id"], "features": {ns: dict(f) for ns, f in a["features"].items()}}
            for a in _ACTION_SPECS
        ]
        return {
            "context": context,
            "actions": actions,
            "expected_rewards": self.dynamics.expected_rewards(s)[0],
        }
