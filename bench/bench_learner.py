"""The online learner reading the joined stream from Redis, against the same VW learner fed
the same events from memory, in the same process, alternating rounds.

    python bench/bench_learner.py [--n 20000] [--rounds 3] [--redis-url URL]

Events have the bench_core shape (10 actions, 10 context + 10 action features, VW
epsilon-greedy). The baseline is `engine.learn` over the joined records held in a list;
the learner is `Learner.step()` until the stream is consumed: XREAD in batches of 2,000,
learn (VW slots parse the logged DSJson bytes with VW's own parser; the model is
byte-identical to engine.learn's), and a publish (model bytes + offset, one atomic write)
every 10,000 events.

Figure (issue: event log): learner >= 0.75x the speed of the in-memory learner.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _redis import bench_redis
from banditrec import AppConfig, DecisionEngine
from banditrec.config import RewardConfig
from banditrec.decision.schema import Reward
from banditrec.eventlog import AppKeys, EventLog, connect
from banditrec.learner import Learner
from bench_core import make_request

TARGET = 0.75


def fill(log: EventLog, config: AppConfig, n: int) -> None:
    engine = DecisionEngine(config)
    rng = np.random.default_rng(1)
    for start in range(0, n, 1000):
        decided = [engine.decide_logged(make_request(rng, i)) for i in range(start, start + 1000)]
        log.decisions.write(config.name, [rec for _, recs in decided for rec in recs])
        rewards = [Reward(event_id=d.event_id, value=float(rng.random() < 0.3)) for d, _ in decided]
        log.rewards.add_rewards(config.name, rewards)
    while log.join.join_due(config.name, now=time.time() + 1, limit=5000):
        pass


def forget_models(log: EventLog, app: str) -> None:
    """Back to an unpublished learner, so the next round reads the stream from its start."""
    k = AppKeys(app)
    versions = [int(v) for v in log.client.zrange(k.models, 0, -1)]
    log.client.delete(k.model, k.models, *(k.model_version_key(v) for v in versions))


def in_memory(config: AppConfig, records: list[dict]) -> float:
    engine = DecisionEngine(config)
    t = time.perf_counter()
    for rec in records:
        engine.learn(rec)
    return len(records) / (time.perf_counter() - t)


def from_redis(log: EventLog, app: str, n: int) -> float:
    forget_models(log, app)
    learner = Learner(log, app)
    t = time.perf_counter()
    consumed = 0
    while got := learner.step(max_events=10_000):
        consumed += got
    rate = consumed / (time.perf_counter() - t)
    assert consumed == n and learner.state.n_consumed == n
    return rate


def plot(mem: list[float], redis_rates: list[float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    rounds = np.arange(len(mem))
    ax.bar(rounds - 0.2, mem, 0.4, label="engine.learn from memory", color="#999999")
    ax.bar(rounds + 0.2, redis_rates, 0.4, label="Learner from Redis", color="#4878cf")
    ax.set_xticks(rounds, [f"round {r + 1}" for r in rounds])
    ax.set_ylabel("events / s")
    ax.set_title(f"Online learner vs in-memory VW (target ratio {TARGET})")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--redis-url", default=None)
    ap.add_argument("--plot", type=Path, default=Path("runs/bench_learner.png"))
    args = ap.parse_args()

    with bench_redis(args.redis_url) as (url, _):
        log = EventLog(connect(url))
        config = AppConfig(
            name="bench-learner",
            policy={
                "kind": "vw",
                "explorer": {"type": "epsilon", "epsilon": 0.1},
                "action_id_feature": False,
            },
            reward=RewardConfig(wait_seconds=0.0),
        )
        log.drop_app(config.name)
        log.configs.put(config)
        fill(log, config, args.n)
        records = [rec for _, rec in log.joined.read(config.name, count=args.n)]
        assert len(records) == args.n
        mem, red = [], []
        for _ in range(args.rounds):
            mem.append(in_memory(config, records))
            red.append(from_redis(log, config.name, args.n))
        log.drop_app(config.name)

    ratios = [r / m for r, m in zip(red, mem, strict=True)]
    for i, (m, r, q) in enumerate(zip(mem, red, ratios, strict=True), 1):
        print(
            f"round {i}: in memory {m:8,.0f} events/s   from Redis {r:8,.0f} events/s   ratio {q:.2f}"
        )
    best = max(ratios)
    median = float(np.median(ratios))
    print(
        f"ratio: median {median:.2f}, best {best:.2f}; target >= {TARGET}: "
        f"{'met' if median >= TARGET else 'NOT met'}"
    )
    plot(mem, red, args.plot)
    print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
