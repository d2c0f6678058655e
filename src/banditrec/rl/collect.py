"""Log journeys in a simulator exactly as the service logs them.

Every step becomes a decision's context (the journey state under the state namespace, the
episode id and step under "episode", plus the env's bandit context so any app can decide
on it); the behaviour app decides and records through `decision.recorder.Recorder`, the
path the simulation harness takes too: the served pmf and the event-seeded draw, the log
record and the join, as the service makes them. The records are the DSJson lines the
service would export, so the same readers and estimators run on both.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from ..decision.engine import DecisionEngine
from ..decision.features import FeatureSet
from ..decision.journey import journey_context, step_event_id
from ..decision.recorder import SIM_EPOCH, Recorder
from ..replay.progress import progress_bar
from .envs import feature_names as names_of
from .envs import make_env


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
    recorder = Recorder(engine)
    env = make_env(env_id, env_kwargs)
    names = names_of(env)
    cfg = engine.config
    namespace = getattr(cfg.policy, "state_namespace", "state")
    id_feature = getattr(cfg.policy, "action_id_feature", True)
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
                    choice = recorder.decide(event_id, x)
                    obs, reward, terminated, truncated, info = env.step(choice.chosen)
                    yield recorder.joined(event_id, choice, float(reward), now)
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
