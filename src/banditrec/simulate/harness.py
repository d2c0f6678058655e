"""Run a policy online in a simulator: decide, observe the reward, learn; record everything.

The decision is the served one: the engine's final pmf (mode, floor) sampled with the
event's seed, exactly what `DecisionEngine.decide` returns for the same event id (a test
holds the two together), and learning goes through `DecisionEngine.learn`. The harness
only skips what a simulation does not need on its hot path: pydantic validation of a
request the env built itself, and the response objects. What a run leaves
(`SimulationResult`, `Comparison`) is in simulate/results.py.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

import gymnasium as gym
import numpy as np
import orjson
from tqdm.auto import tqdm

from .. import envs as _envs  # noqa: F401  (registers the banditrec/ envs)
from ..decision.engine import DecisionEngine
from ..decision.features import FeatureSet
from ..decision.recorder import SIM_EPOCH, Recorder
from ..policies.interactions import namespaces, unmatched_terms
from .results import Comparison, SimulationResult
from .specs import PolicySpec, policy_spec

_PROGRESS_EVERY = 256


def make_env(
    env: str | gym.Env, env_kwargs: Mapping[str, Any] | None = None
) -> tuple[gym.Env, str]:
    """An env instance and its id, from a registered id or an instance."""
    if isinstance(env, str):
        try:
            return gym.make(env, **dict(env_kwargs or {})), env
        except gym.error.Error as e:
            raise ValueError(f"cannot make env {env!r}: {e}") from None
    if env_kwargs:
        raise ValueError("env_kwargs only apply when the env is given by id")
    spec = getattr(env, "spec", None)
    return env, spec.id if spec is not None else type(env.unwrapped).__name__


def simulate(
    env: str | gym.Env,
    policy: Any = None,
    *,
    steps: int,
    seed: int = 0,
    name: str | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    log_path: str | Path | None = None,
    learn: bool = True,
    progress: bool = True,
    engine: DecisionEngine | None = None,
) -> SimulationResult:
    """Run `policy` online for `steps` decisions in `env`, seeded by `seed`.

    `policy` is anything `policy_spec` takes (a policy or app config, a dict, a kind name);
    pass `engine` instead to continue from an existing engine (e.g. a trained model).
    With `log_path`, every decision is written there as a joined DSJson record (one JSON
    object per line: VW's `--dsjson` reads it, and so does the replay code).
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if engine is not None:
        if policy is not None:
            raise ValueError("pass either a policy config or an engine, not both")
        spec = policy_spec(engine.config, name=name)
    else:
        spec = policy_spec(policy, name=name)
        engine = DecisionEngine(spec.app)
    env_instance, env_id = make_env(env, env_kwargs)
    log = Path(log_path) if log_path is not None else None
    with ExitStack() as stack:
        sink = None
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            sink = stack.enter_context(log.open("wb"))
        bar = stack.enter_context(
            tqdm(
                total=steps,
                desc=spec.name,
                unit="step",
                disable=not progress,
                mininterval=0.5,
                leave=False,
            )
        )
        recorder = Recorder(engine, policy=spec.name)
        result = _run(
            env_instance, recorder, spec, steps=steps, seed=seed, learn=learn, sink=sink, bar=bar
        )
    return SimulationResult(
        name=spec.name, env_id=env_id, seed=seed, log_path=log, engine=engine, **result
    )


def _run(
    env: gym.Env,
    recorder: Recorder,
    spec: PolicySpec,
    *,
    steps: int,
    seed: int,
    learn: bool,
    sink: IO[bytes] | None,
    bar: tqdm,
) -> dict[str, Any]:
    engine = recorder.engine
    cfg = engine.config
    id_feature = getattr(cfg.policy, "action_id_feature", True)
    arrays = {
        k: np.zeros(steps)
        for k in ("rewards", "expected", "policy_value", "oracle", "uniform", "probability")
    }
    chosen_at = np.zeros(steps, dtype=np.int64)
    served: list[tuple[np.ndarray, np.ndarray]] = []  # (pmf, expected rewards) since the last block
    started = time.perf_counter()
    _, info = env.reset(seed=seed)
    for t in range(steps):
        x = FeatureSet.build(
            info["context"],
            [(a["id"], a["features"]) for a in info["actions"]],
            action_id_feature=id_feature,
        )
        if t == 0:
            _check_interactions(cfg.policy, x)
        q = info["expected_rewards"]
        event_id = f"sim-{seed}-{t}"
        choice = recorder.decide(event_id, x)  # the served pmf and draw
        chosen = choice.chosen
        _, reward, terminated, truncated, info_next = env.step(chosen)
        reward = float(reward)
        if sink is not None:
            joined = recorder.joined(event_id, choice, reward, SIM_EPOCH + t)
            sink.write(orjson.dumps(joined, option=orjson.OPT_APPEND_NEWLINE))
        if learn:
            engine.learn(choice.interaction(reward))
        arrays["rewards"][t] = reward
        chosen_at[t] = chosen
        served.append((choice.pmf, q))
        if terminated or truncated:  # sequential envs: the next user's journey
            _, info_next = env.reset()
        info = info_next
        if t % _PROGRESS_EVERY == _PROGRESS_EVERY - 1:
            _step_figures(served, chosen_at, t + 1, arrays)
            served = []
            bar.update(_PROGRESS_EVERY)
    _step_figures(served, chosen_at, steps, arrays)
    bar.update(steps - bar.n)
    return {**arrays, "chosen": chosen_at, "spec": spec, "seconds": time.perf_counter() - started}


def _check_interactions(policy: Any, x: FeatureSet) -> None:
    """An env declares its namespaces: explicit VW interactions that match none are an error."""
    terms = getattr(policy, "interactions", None)
    if not terms:
        return
    context, actions = namespaces(x.context, x.actions)
    unmatched = unmatched_terms(terms, context | actions)
    if unmatched:
        raise ValueError(
            f"interactions {unmatched} match no namespace of this env's requests (context: "
            f"{sorted(context)}, actions: {sorted(actions)}); VW crosses namespaces by first "
            "letter, or leave interactions unset to cross every context namespace with every "
            "action namespace"
        )


def _step_figures(
    served: list[tuple[np.ndarray, np.ndarray]],
    chosen: np.ndarray,
    end: int,
    arrays: dict[str, np.ndarray],
) -> None:
    """The per-step figures of the steps before `end` whose (pmf, expected rewards) are in
    `served`, a block at a time: numpy calls on one step's few actions cost more than the
    arithmetic, and a block with one action count is a few calls in all."""
    if not served:
        return
    start = end - len(served)
    a = chosen[start:end]
    if len({len(q) for _, q in served}) == 1:
        p = np.stack([p for p, _ in served])
        q = np.stack([q for _, q in served])
        rows = np.arange(len(served))
        arrays["expected"][start:end] = q[rows, a]
        arrays["policy_value"][start:end] = np.einsum("ij,ij->i", p, q)
        arrays["oracle"][start:end] = q.max(axis=1)
        arrays["uniform"][start:end] = q.mean(axis=1)
        arrays["probability"][start:end] = p[rows, a]
        return
    for i, (p, q) in enumerate(served):  # candidate sets of different sizes
        arrays["expected"][start + i] = q[a[i]]
        arrays["policy_value"][start + i] = p @ q
        arrays["oracle"][start + i] = q.max()
        arrays["uniform"][start + i] = q.mean()
        arrays["probability"][start + i] = p[a[i]]


def compare(
    env: str | gym.Env,
    policies: Sequence[Any] | Mapping[str, Any],
    *,
    steps: int,
    seed: int = 0,
    env_kwargs: Mapping[str, Any] | None = None,
    out_dir: str | Path | None = None,
    log: bool = False,
    plot: bool = True,
    progress: bool = True,
) -> Comparison:
    """Run several policies on the same env and seed; with `out_dir`, write the plot
    (`comparison.png`), the summary (`summary.json`) and, with `log`, each run's DSJson."""
    from .specs import parse_policy_specs

    specs = parse_policy_specs(dict(policies) if isinstance(policies, Mapping) else list(policies))
    out = Path(out_dir) if out_dir is not None else None
    if log and out is None:
        raise ValueError("log=True needs an out_dir to write the logs to")
    results = []
    env_id = ""
    for spec in tqdm(specs, desc="policies", unit="policy", disable=not progress or len(specs) < 2):
        log_path = (
            out / "logs" / f"{_file_name(spec.name)}.dsjson" if (log and out is not None) else None
        )
        result = simulate(
            env,
            spec,
            steps=steps,
            seed=seed,
            env_kwargs=env_kwargs,
            log_path=log_path,
            progress=progress,
        )
        env_id = result.env_id
        results.append(result)
    comparison = Comparison(env_id=env_id, seed=seed, results=results)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_bytes(
            orjson.dumps(
                comparison.summary(), option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY
            )
        )
        if plot:
            comparison.plot_path = out / "comparison.png"
            comparison.plot(comparison.plot_path)
    return comparison


def _file_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "policy"
