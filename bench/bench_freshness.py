"""Freshness: from a reward's join to a replica serving a model that learned it.

    python bench/bench_freshness.py [--seconds 20] [--rate 300] [--poll 0.05]

One process plays the product and a serving replica: it decides (VW epsilon-greedy,
bench_core shape), logs each decision, sends its reward right away (join_on_first: the
reward's arrival joins the decision), and runs a ModelWatcher polling every --poll
seconds that swaps new models into its DecisionEngine. A second process runs the app's
workers (joiner + learner, `run_app_workers`), as the serving layer's learner pool does.

For every joined event: freshness = (time the replica swapped in the first model whose
learned-through offset covers the event) − (the event's join time).

Figure (issue: event log): p95 <= 2 s.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _redis import bench_redis
from banditrec import AppConfig, DecisionEngine
from banditrec.config import RewardConfig
from banditrec.decision.schema import Reward
from banditrec.eventlog import AppKeys, EventLog, EventLogSettings, connect
from banditrec.eventlog.records import joined_header, stream_id_tuple
from banditrec.learner import run_app_workers
from banditrec.serving.watcher import ModelWatcher
from bench_core import make_request

TARGET_P95_S = 2.0
SETTINGS = EventLogSettings(models_kept=100_000)  # keep every version: offsets are read back


def workers_process(url: str, app: str, stop: mp.Event, publish_every_s: float) -> None:
    log = EventLog(connect(url), settings=SETTINGS)
    run_app_workers(log, app, stop, join_interval_s=0.05, publish_every_s=publish_every_s)


def product(log: EventLog, engine: DecisionEngine, seconds: float, rate: float) -> int:
    rng = np.random.default_rng(2)
    n = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        if n > elapsed * rate:
            time.sleep(0.002)
            continue
        decision, records = engine.decide_logged(make_request(rng, n))
        log.decisions.write(engine.config.name, records)
        reward = float(decision.action_id == "article-3") + 0.1 * float(rng.random())
        log.rewards.add_rewards(
            engine.config.name, [Reward(event_id=decision.event_id, value=reward)]
        )
        n += 1
    return n


def plot(fresh: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    xs = np.sort(fresh)
    ax.plot(xs, np.arange(1, len(xs) + 1) / len(xs), color="#4878cf")
    ax.axvline(TARGET_P95_S, color="#d65f5f", linestyle="--", label=f"target p95 {TARGET_P95_S} s")
    ax.axhline(0.95, color="#999999", linewidth=0.8)
    ax.set_xlabel("join → served by a replica (s)")
    ax.set_ylabel("fraction of events")
    ax.set_title("Model freshness")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rate", type=float, default=300.0, help="decisions (and rewards) per second")
    ap.add_argument("--poll", type=float, default=0.05, help="replica's model poll interval (s)")
    ap.add_argument(
        "--publish-every", type=float, default=0.25, help="learner publish interval (s)"
    )
    ap.add_argument("--plot", type=Path, default=Path("runs/bench_freshness.png"))
    args = ap.parse_args()

    with bench_redis() as (url, _):
        log = EventLog(connect(url), settings=SETTINGS)
        config = AppConfig(
            name="bench-freshness",
            policy={"kind": "vw", "action_id_feature": False},
            reward=RewardConfig(wait_seconds=10.0, join_on_first=True),
        )
        log.configs.put(config)
        replica = DecisionEngine(config)
        watcher = ModelWatcher(log, config.name, replica)
        swaps: list[tuple[float, int]] = []
        stop_watch = threading.Event()

        def watch() -> None:
            while not stop_watch.is_set():
                if watcher.poll():
                    swaps.append((time.time(), replica.model_version))
                stop_watch.wait(args.poll)

        ctx = mp.get_context("spawn")
        stop = ctx.Event()
        worker = ctx.Process(
            target=workers_process, args=(url, config.name, stop, args.publish_every)
        )
        worker.start()
        watch_thread = threading.Thread(target=watch, daemon=True)
        watch_thread.start()
        n = product(log, replica, args.seconds, args.rate)
        deadline = time.time() + 15
        while log.joined.stats(config.name).get("learned", 0) < n and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(4 * args.poll)
        stop_watch.set()
        watch_thread.join()
        stop.set()
        worker.join(timeout=20)

        offsets = {m.version: stream_id_tuple(m.offset) for m in log.models.list(config.name)}
        covered = [(t, offsets[v]) for t, v in swaps if v in offsets]
        fresh = []
        for sid, fields in log.client.xrange(AppKeys(config.name).joined):
            joined_at = joined_header(fields).joined_at
            key = stream_id_tuple(sid)
            served = next((t for t, off in covered if off >= key), None)
            if served is not None:
                fresh.append(served - joined_at)
        stats = log.joined.stats(config.name)

    fresh_s = np.asarray(fresh)
    print(
        f"decisions {n} ({n / args.seconds:.0f}/s), joined {stats.get('joined')}, "
        f"learned {stats.get('learned')}, models published {stats.get('published')}, "
        f"replica swaps {len(swaps)}"
    )
    print(f"events measured: {len(fresh_s)} (every joined event a served model covers)")
    p50, p95, p99 = np.percentile(fresh_s, [50, 95, 99])
    print(
        f"freshness join -> served: p50 {p50:.3f} s  p95 {p95:.3f} s  p99 {p99:.3f} s  "
        f"max {fresh_s.max():.3f} s"
    )
    print(f"target p95 <= {TARGET_P95_S} s: {'met' if p95 <= TARGET_P95_S else 'NOT met'}")
    plot(fresh_s, args.plot)
    print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
