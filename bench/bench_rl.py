"""RL policies for journeys: decision latency through the endpoint, training time, comparison.

    python bench/bench_rl.py [--parts latency,train,compare] [--seed 0] [--out runs/bench-rl]

- latency: one process with its own Ray (2 CPUs), Serve (HAProxy ingress) and embedded Redis
  serves two apps side by side on the same journey request (the state, the episode, the
  env's bandit context, 13 actions): an RL app (the packaged PPO module) and a VW app
  (epsilon-greedy). Sequential requests on one keep-alive connection, alternating rounds of
  each app, so both see the same machine; also the in-process `engine.decide` time of each.
  Figure: RL / VW latency ratio (p50) through the endpoint.
- train: PPO on banditrec/EngagementJourney-v0 until the policy's true value (Monte Carlo,
  evaluated every 2 iterations) beats the myopic oracle's by the margin (default +20%), on
  this machine's CPU; reports iterations, env steps and seconds. With --full, goes on to the
  packaged policy's run (60 iterations) and checks it reproduces the packaged module.
- compare: `banditrec compare-rl` with its defaults: RL vs the myopic oracle vs a VW bandit
  vs a rule, true values and OPE estimates from a behaviour policy's log.
- coverage: how often each estimator's 95% interval covers the RL policy's true value, over
  --coverage-seeds logs of 400 journeys of the behaviour policy (the module at temperature
  --behaviour-temperature), as in tests/test_rl_ope.py.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import per_call, us

ENV = "banditrec/EngagementJourney-v0"


def journey_bodies(n: int) -> list[dict[str, Any]]:
    """Request bodies of real journey steps: the state, the episode, the env's context."""
    from banditrec.decision.journey import journey_request
    from banditrec.envs.journey import OBS_FIELDS, EngagementJourneyEnv

    env = EngagementJourneyEnv()
    rng = np.random.default_rng(0)
    bodies = []
    obs, info = env.reset(seed=0)
    episode, step = 0, 0
    while len(bodies) < n:
        req = journey_request(
            obs, OBS_FIELDS, info["actions"], f"u{episode}", step, extra=info["context"]
        )
        body = req.model_dump(mode="json")
        body.pop("event_id")  # the service names each event
        bodies.append(body)
        obs, _, terminated, truncated, info = env.step(int(rng.integers(13)))
        step += 1
        if terminated or truncated:
            obs, info = env.reset()
            episode, step = episode + 1, 0
    return bodies


# --- latency ---------------------------------------------------------------------------------


def latency(args: argparse.Namespace) -> dict[str, Any]:
    files = Path(tempfile.mkdtemp(prefix="brrl-", dir="/tmp"))
    from banditrec.eventlog.server import free_port
    from banditrec.serving.runner import haproxy_env

    os.environ.update(haproxy_env(files))
    import httpx
    import ray
    from ray import serve

    from banditrec.decision.engine import DecisionEngine
    from banditrec.decision.schema import DecisionRequest
    from banditrec.eventlog import EmbeddedRedis
    from banditrec.rl.pretrained import JOURNEY_PPO
    from banditrec.serving.auth import create_key
    from banditrec.serving.deployment import deploy
    from banditrec.serving.runner import wait_ready
    from banditrec.serving.settings import ServiceSettings

    apps = {
        "rl": {"name": "rl", "policy": {"kind": "rl", "module_path": str(JOURNEY_PPO)}},
        "vw": {
            "name": "vw",
            "policy": {"kind": "vw", "explorer": {"type": "epsilon", "epsilon": 0.1}},
        },
    }
    for a in apps.values():
        a["reward"] = {"wait_seconds": 30}
    bodies = journey_bodies(args.requests)

    # in-process: the engine alone, same requests
    in_process = {}
    for name, app in apps.items():
        engine = DecisionEngine.from_config(app)
        requests = [DecisionRequest.model_validate(b) for b in bodies]
        it = iter(range(10**9))
        in_process[name] = per_call(
            lambda e=engine, r=requests, i=it: e.decide(r[next(i) % len(r)]), 2000
        )

    key, record = create_key(["*"], ["admin"])
    settings = ServiceSettings.model_validate(
        {"apps": list(apps.values()), "api_keys": [record.model_dump()]}
    )
    redis = EmbeddedRedis(files / "redis").start()
    port = free_port()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    samples: dict[str, list[float]] = {"rl": [], "vw": []}
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        deploy(redis.url, settings, spool_dir=str(files / "spool"))
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, timeout_s=180)
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            for name in apps:  # warm-up: connection, caches, the module's first forward pass
                for body in bodies[:200]:
                    http.post(f"/v1/apps/{name}/decisions", json=body).raise_for_status()
            for _ in range(args.rounds):
                for name in apps:
                    for body in bodies:
                        t = time.perf_counter()
                        r = http.post(f"/v1/apps/{name}/decisions", json=body)
                        samples[name].append(time.perf_counter() - t)
                        r.raise_for_status()
    finally:
        ray.shutdown()
        redis.stop()
        shutil.rmtree(files, ignore_errors=True)

    out: dict[str, Any] = {"requests_per_app": len(samples["rl"])}
    for name in apps:
        s = np.asarray(samples[name])
        out[name] = {
            "http_p50_ms": us(s, 50) / 1000,
            "http_p99_ms": us(s, 99) / 1000,
            "engine_p50_us": us(in_process[name], 50),
            "engine_p99_us": us(in_process[name], 99),
        }
    out["ratio_http_p50"] = out["rl"]["http_p50_ms"] / out["vw"]["http_p50_ms"]
    out["ratio_http_p99"] = out["rl"]["http_p99_ms"] / out["vw"]["http_p99_ms"]
    out["ratio_engine_p50"] = out["rl"]["engine_p50_us"] / out["vw"]["engine_p50_us"]
    return out


# --- training --------------------------------------------------------------------------------


def train_to_margin(args: argparse.Namespace) -> dict[str, Any]:
    from banditrec.envs.journey_value import GreedyPolicy, monte_carlo_value
    from banditrec.rl.train import TrainSettings, train

    eval_seed, eval_episodes = 10_000, 2000
    myopic = monte_carlo_value(GreedyPolicy(), eval_episodes, eval_seed).mean
    target = myopic * (1.0 + args.margin)
    out = Path(args.out) / "train"
    shutil.rmtree(out, ignore_errors=True)
    settings = TrainSettings(
        iterations=60,
        seed=args.seed,
        out=out,
        eval_every=2,
        eval_episodes=eval_episodes,
        eval_seed=eval_seed,
        target_value=target,
        stop_at_target=not args.full,
    )
    started = time.perf_counter()
    result = train(settings, progress=True)
    total = time.perf_counter() - started
    summary: dict[str, Any] = {
        "seed": args.seed,
        "myopic_oracle_value": myopic,
        "target_value": target,
        "margin": args.margin,
        "build_seconds": result.build_seconds,
        "wall_seconds_incl_startup": total,
        "final_value": result.final_value,
        "iterations": len(result.history),
        "curve": str(result.curve_path),
    }
    if result.reached_target_at is not None:
        r = result.reached_target_at
        summary["reached"] = {k: r[k] for k in ("iteration", "env_steps", "seconds", "true_value")}
    if args.full:
        summary["reproduces_packaged_module"] = _same_weights(result.policy_path)
    return summary


def _same_weights(path: Path) -> bool:
    from banditrec.rl.pretrained import JOURNEY_PPO

    def weights(data: bytes) -> dict[str, np.ndarray]:
        with np.load(io.BytesIO(data)) as npz:
            return {k: npz[k] for k in npz.files if k.startswith("w:")}

    a, b = weights(path.read_bytes()), weights(JOURNEY_PPO.read_bytes())
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


# --- comparison ------------------------------------------------------------------------------


def comparison(args: argparse.Namespace) -> dict[str, Any]:
    from banditrec.rl.compare import CompareSettings, compare, comparison_table
    from banditrec.rl.pretrained import JOURNEY_PPO

    summary = compare(
        CompareSettings(module=JOURNEY_PPO, seed=args.seed, out=Path(args.out) / "compare"),
        progress=True,
    )
    print(comparison_table(summary), flush=True)
    return summary


def coverage(args: argparse.Namespace) -> dict[str, Any]:
    from banditrec.envs.journey import OBS_FIELDS
    from banditrec.rl.collect import journeys
    from banditrec.rl.evaluate import EnginePolicy, rl_engine, true_value
    from banditrec.rl.ope import evaluate_sequential
    from banditrec.rl.pretrained import JOURNEY_PPO
    from banditrec.rl.targets import engine_pmfs
    from banditrec.rl.trajectories import from_records

    module = JOURNEY_PPO.read_bytes()
    target = rl_engine(module)
    behaviour = rl_engine(module, temperature=args.behaviour_temperature)
    truth = true_value(EnginePolicy(target, list(OBS_FIELDS), 0), ENV, None, 50_000, seed=0)
    hits: dict[str, list[bool]] = {}
    errors: dict[str, list[float]] = {}
    for k in range(args.coverage_seeds):
        traj = from_records(journeys(behaviour, ENV, 400, seed=100 + k))
        report = evaluate_sequential(traj, engine_pmfs(target, traj), n_boot_model=30, rng=k)
        for name, e in report.estimates.items():
            hits.setdefault(name, []).append(e.ci_low <= truth.mean <= e.ci_high)
            errors.setdefault(name, []).append(e.value - truth.mean)
        print(
            f"seed {100 + k}:",
            {n: round(e.value, 3) for n, e in report.estimates.items()},
            flush=True,
        )
    return {
        "behaviour_temperature": args.behaviour_temperature,
        "truth": truth.mean,
        "truth_stderr": truth.std_error,
        "logs": args.coverage_seeds,
        "coverage": {n: float(np.mean(v)) for n, v in hits.items()},
        "mean_error": {n: float(np.mean(v)) for n, v in errors.items()},
        "rmse": {n: float(np.sqrt(np.mean(np.square(v)))) for n, v in errors.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--parts", default="latency,train,compare")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--margin", type=float, default=0.2, help="Relative margin over the myopic oracle."
    )
    parser.add_argument("--full", action="store_true", help="Train the packaged policy's full run.")
    parser.add_argument(
        "--requests", type=int, default=500, help="Latency: requests per app and round."
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--coverage-seeds", type=int, default=10)
    parser.add_argument("--behaviour-temperature", type=float, default=1.15)
    parser.add_argument("--out", default="runs/bench-rl")
    args = parser.parse_args()
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    results: dict[str, Any] = {}
    for part in parts:
        fn = {
            "latency": latency,
            "train": train_to_margin,
            "compare": comparison,
            "coverage": coverage,
        }[part]
        results[part] = fn(args)
        print(f"\n== {part} ==\n{json.dumps(results[part], indent=2, default=str)}", flush=True)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "bench_rl.json").write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
