"""Cost and tightness of the arms' off-policy estimates (experiments/offpolicy.py).

    python bench/bench_experiments.py [--events 5000] [--repeat 5]

An app on the Content simulator (`banditrec/Content-v0`, 10 candidates per request) runs an
experiment of four arms (the learned VW policy, squarecb; a `policy` arm, VW with
ε-greedy 0.1; the default action; a uniform holdout, weights 4:2:1:1). `--events`
decisions are served by the engine, rewarded by the simulator, joined and learned in an
embedded Redis (rounds of 500: serve, reward, join, learn, swap the model in); then one
evaluation pass (`arm_estimates` on the latest `--events` joined decisions, what the
supervisor runs every `evaluation.interval_seconds`) is timed: median wall and CPU time of
`--repeat` passes, and the share of one core it takes at the default 30-second interval.

Then, per arm, the online interval on its own slice against the off-policy interval on
all arms' traffic and their width ratio, twice: on the decisions served while the models
learned (from a cold start), and on `--events` more served by the models as they ended
(learned no further), where the estimators' picture of each arm holds for the window.
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium as gym
import numpy as np

import banditrec.envs  # noqa: F401  (registers the simulators)
from _redis import bench_redis
from banditrec import AppConfig, DecisionEngine
from banditrec.decision.schema import Reward
from banditrec.eventlog import EventLog, connect
from banditrec.experiments.config import EvaluationConfig
from banditrec.experiments.offpolicy import arm_estimates
from banditrec.learner import Learner

EPS = {"type": "epsilon", "epsilon": 0.1}
ARMS = [
    {"name": "learned", "kind": "learned", "weight": 4},
    {"name": "epsilon", "kind": "policy", "weight": 2, "policy": {"kind": "vw", "explorer": EPS}},
    {"name": "editorial", "kind": "default", "weight": 1},
    {"name": "holdout", "kind": "uniform", "weight": 1},
]


def fill(log: EventLog, config: AppConfig, n: int, learn: bool, batch: int = 500) -> None:
    """n decisions served in rounds of `batch`, each round rewarded, joined (and learned)."""
    env = gym.make("banditrec/Content-v0").unwrapped
    env.reset(seed=0)
    rng = np.random.default_rng(1 if learn else 2)
    engine = DecisionEngine(config)
    learner = Learner(log, config.name)
    latest = log.models.latest(config.name)
    if latest is not None:
        engine.load_models(latest.models, latest.version)
    offset = 0 if learn else 10**6
    for start in range(offset, offset + n, batch):
        rows = env.sample_batch(batch, rng)
        records, chosen, ids = [], np.zeros(batch, dtype=np.intp), []
        for i in range(batch):
            request = rows.request(i, f"e{start + i}").model_copy(
                update={"unit_id": f"u{start + i}"}
            )
            decision, logged = engine.decide_logged(request)
            records += logged
            chosen[i] = [a["id"] for a in rows.actions(i)].index(decision.action_id)
            ids.append(decision.event_id)
        log.decisions.write(config.name, records)
        rewards = rows.sample_rewards(chosen, rng)
        log.rewards.add_rewards(
            config.name,
            [Reward(event_id=e, value=float(r)) for e, r in zip(ids, rewards, strict=True)],
        )
        while log.join.join_due(config.name, now=time.time() + 3600):
            pass
        if learn:
            learner.step()
            latest = log.models.latest(config.name)
            engine.load_models(latest.models, latest.version)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--events", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--redis-url")
    args = ap.parse_args()
    config = AppConfig.model_validate(
        {"name": "bench-exp", "policy": {"kind": "vw"}, "experiment": {"name": "e", "arms": ARMS}}
    )
    with bench_redis(args.redis_url) as (url, _):
        log = EventLog(connect(url))
        log.configs.put(config)
        fill(log, config, args.events, learn=True)
        walls, cpus = [], []
        for _ in range(args.repeat):
            w, c = time.perf_counter(), time.process_time()
            found = arm_estimates(log, config.name, config, args.events)
            walls.append(time.perf_counter() - w)
            cpus.append(time.process_time() - c)
        fill(log, config, args.events, learn=False)
        steady = arm_estimates(log, config.name, config, args.events)
        log.drop_app(config.name)
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    interval = EvaluationConfig().interval_seconds
    print(f"{found['events']} joined decisions × {len(ARMS)} arms, one evaluation pass:")
    print(f"  wall {wall * 1e3:.0f} ms, CPU {cpu * 1e3:.0f} ms (median of {args.repeat})")
    print(f"  CPU per decision and arm: {cpu / found['events'] / len(ARMS) * 1e6:.1f} µs")
    print(f"  share of one core every {interval:.0f} s: {cpu / interval:.2%}")
    for title, estimates in (("while learning", found), ("models as they ended", steady)):
        table(title, estimates)


def table(title: str, found: dict) -> None:
    def show(x: dict) -> str:
        return f"{x['mean']:.3f} [{x['lower']:.3f}, {x['upper']:.3f}]"

    print(f"\n{title}: {found['events']} decisions")
    print(f"{'arm':<10} {'n':>5} {'online (95%)':>24} {'off-policy, all (95%)':>24} {'width':>6}")
    for name, e in found["arms"].items():
        on, off = e["online"], e["off_policy"]
        ratio = (off["upper"] - off["lower"]) / (on["upper"] - on["lower"])
        print(f"{name:<10} {e['decisions']:>5} {show(on):>24} {show(off):>24} {ratio:>6.2f}")


if __name__ == "__main__":
    main()
