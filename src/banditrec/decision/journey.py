"""How a sequential decision travels in a request: the state, the episode, the step.

An RL app's request carries, in its context,

- the observation the module acts on, one feature per observation field, under the state
  namespace (default "state"): `{"state": {"engagement": 0.41, "fatigue": 1.2, …}}`;
- who and when, under "episode": `{"episode": {"id": "user-42", "step": 3}}`. The policy
  ignores it; it is logged with the decision (the record's `c`), which is what lets a
  trajectory be rebuilt from the log: group records by episode id, order them by step.

The service keeps no per-user state: the product sends the journey state it has, so every
replica answers every user and a decision is a pure function of its request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .schema import DecisionRequest

STATE_NAMESPACE = "state"
EPISODE_NAMESPACE = "episode"


def state_features(obs: Sequence[float] | np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """An observation vector as named features (JSON floats)."""
    values = np.asarray(obs, dtype=np.float64).ravel()
    if values.size != len(names):
        raise ValueError(f"observation has {values.size} values for {len(names)} feature names")
    return dict(zip(names, values.tolist(), strict=True))


def observation(
    context: Mapping[str, Mapping[str, Any]],
    names: Sequence[str],
    namespace: str = STATE_NAMESPACE,
) -> np.ndarray:
    """The observation vector a request's context carries; ValueError says what is missing."""
    state = context.get(namespace)
    if not isinstance(state, Mapping):
        raise ValueError(
            f"context.{namespace} is missing: an RL app needs the journey state there, "
            f"as numbers named {list(names)}"
        )
    missing = [n for n in names if n not in state]
    if missing:
        raise ValueError(f"context.{namespace} lacks the state features {missing}")
    out = np.empty(len(names), dtype=np.float32)
    for i, name in enumerate(names):
        value = state[name]
        # bool is an int subclass: a flag (prefers_morning) is a 0/1 feature
        if not isinstance(value, int | float):
            raise ValueError(f"context.{namespace}.{name} must be a number, got {value!r}")
        out[i] = float(value)
    return out


def episode_context(episode_id: str, step: int) -> dict[str, Any]:
    return {"id": str(episode_id), "step": int(step)}


def episode_of(context: Mapping[str, Any]) -> tuple[str, int] | None:
    """(episode id, step) of a logged context, or None when the decision carries none."""
    ep = context.get(EPISODE_NAMESPACE)
    if not isinstance(ep, Mapping) or "id" not in ep or "step" not in ep:
        return None
    step = ep["step"]
    if isinstance(step, bool) or not isinstance(step, int | float) or step != int(step):
        raise ValueError(f"context.{EPISODE_NAMESPACE}.step must be an integer, got {step!r}")
    return str(ep["id"]), int(step)


def journey_context(
    obs: Sequence[float] | np.ndarray,
    names: Sequence[str],
    episode_id: str,
    step: int,
    *,
    namespace: str = STATE_NAMESPACE,
    extra: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """The context of one step: the state, the episode, and any other namespaces."""
    context: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (extra or {}).items()}
    context[namespace] = state_features(obs, names)
    context[EPISODE_NAMESPACE] = episode_context(episode_id, step)
    return context


def journey_request(
    obs: Sequence[float] | np.ndarray,
    names: Sequence[str],
    actions: Sequence[Mapping[str, Any]] | Sequence[str],
    episode_id: str,
    step: int,
    *,
    event_id: str | None = None,
    namespace: str = STATE_NAMESPACE,
    extra: Mapping[str, Mapping[str, Any]] | None = None,
) -> DecisionRequest:
    """The validated request (as POSTed to /decisions) of one journey step.

    `actions` are action ids or `{"id", "features"}` dicts (e.g. the env's `info["actions"]`).
    """
    data: dict[str, Any] = {
        "context": journey_context(obs, names, episode_id, step, namespace=namespace, extra=extra),
        "actions": [{"id": a} if isinstance(a, str) else dict(a) for a in actions],
    }
    if event_id is not None:
        data["event_id"] = event_id
    return DecisionRequest.model_validate(data)


def step_event_id(episode_id: str, step: int) -> str:
    """A decision id that names its episode and step (valid under the event id pattern)."""
    return f"{episode_id}.{step}"
