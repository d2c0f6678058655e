"""Log journeys in a simulator exactly as the service logs them.

Every step becomes a decision's context (the journey state under the state namespace, the
episode id and step under "episode", plus the env's bandit context so any app can decide
on it); the behaviour app decides with `DecisionEngine.choose_features` — the served pmf
and the event-seeded draw, as `decide` makes them, without validating a request the
simulator built itself (as the simulation harness does) — the record is `dsjson.build_record`
and the step's reward is joined with `dsjson.set_reward`, as the join does. The records are
the DSJson lines the service would export, so the same readers and estimators run on both.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from ..decision.engine import DecisionEngine
from ..decision.features import FeatureSet
from ..decision.record import build_record, set_reward
from ..replay.progress import progress_bar
from .envs import feature_names as names_of
from .envs import make_env
from .layout import journey_context, step_event_id

# Decisions are stamped from a fixed clock (one second per step): a run's log is reproducible.
SIM_EPOCH = 1_700_000_000.0


def journeys(
    engine: DecisionEngine,
    env_id: str,
    episodes: int,
    seed: int = 0,
    *,
    env_kwargs: dict[str, Any] | None = None,
    episode_prefix: str = "sim",
    progress: bool | None = None,
) -> Iterator[dict[str, Any]]:
    """Joined DSJson records of `episodes` journeys decided by `engine`, step by step."""
    env = make_env(env_id, env_kwargs)
    names = names_of(env)
    cfg = engine.config
    if cfg.slots is not None:
        raise ValueError("journeys are decided one action per step: use a single-slot app")
    namespace = getattr(cfg.policy, "state_namespace", "state")
    id_feature = getattr(cfg.policy, "action_id_feature", True)
    scale = cfg.cost_scales()[None]
    now = SIM_EPOCH
    try:
        obs, info = env.reset(seed=seed)
        with progress_bar(episodes, "journeys", progress, unit=" episodes") as bar:
            for e in range(episodes):
                if e:
                    obs, info = env.reset()
                episode = f"{episode_prefix}-{seed}-{e}"
                step, done = 0, False
                while not done:
                    context = journey_context(
                        obs, names, episode, step, namespace=namespace, extra=info.get("context")
                    )
                    x = FeatureSet.build(
                        context,
                        [(a["id"], a.get("features", {})) for a in info["actions"]],
                        action_id_feature=id_feature,
                    )
                    event_id = step_event_id(episode, step)
                    served, (choice,) = engine.choose_features(event_id, {None: x})
                    record = build_record(
                        app=cfg.name,
                        event_id=event_id,
                        features=x,
                        pmf=choice.pmf,
                        order=choice.order,
                        model_version=served.version,
                        policy=cfg.policy.kind,
                        mode=cfg.mode,
                        now=now,
                    )
                    obs, reward, terminated, truncated, info = env.step(choice.chosen)
                    yield set_reward(record, float(reward), joined_at=now, scale=scale)
                    now += 1.0
                    step += 1
                    done = terminated or truncated
                bar.update(1)
    finally:
        env.close()


def write_jsonl(records: Iterator[dict[str, Any]] | list[dict[str, Any]], path: str | Path) -> Path:
    """One JSON record per line (a DSJson log file)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("wb") as fh:
        for record in records:
            fh.write(orjson.dumps(record))
            fh.write(b"\n")
    return p
