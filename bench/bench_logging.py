"""Decision logging into a local Redis from one process.

    python bench/bench_logging.py [--n 40000] [--shape core|compact] [--grow] [--redis-url URL]

Records are real `decide_logged` records, of the bench_core shape (10 actions, 10 context
features + 10 features per action, ~3.4 KB) or a compact one (4 actions, ~0.7 KB), each
with its own event id, written to the embedded
redis-server (appendonly on, fsync every second) unless --redis-url is given. Three ways
of calling the decision log (`EventLog.decisions`):

  batched   `decisions.write`, one call per 1,000 records (what the serving writer sends
            under load)
  threads   16 threads, one decision each per call through the serving writer
            (`serving.writer.DecisionWriter`, the one layer batching concurrent callers)
  single    one thread, one decision per call: bound by the round trip (latency p50/p99)

Between rounds the round's events are deleted (untimed), as the join and retention do in a
running service, so Redis holds about one round (~135 MB of full records) instead of a
dataset that grows by that much every round; `--grow` keeps them all, to see Redis slow
down as its memory and append-only file grow.

Figure (issue: event log): decision logging >= 30,000 records/s from one process.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).parent))
from _redis import bench_redis
from banditrec import AppConfig, DecisionEngine, DecisionRequest
from banditrec.config import RewardConfig
from banditrec.decision.record import META_KEY
from banditrec.eventlog import AppKeys, EventLog, connect
from banditrec.serving.writer import DecisionWriter
from bench_core import make_request

TARGET = 30_000


def compact_request(rng: np.random.Generator, i: int) -> DecisionRequest:
    """A small decision: 3 context features, 4 actions with 2 features each."""
    context = {"user": {"segment": f"s{int(rng.integers(5))}", "age": int(rng.integers(18, 80))}}
    actions = [
        {"id": f"item-{a}", "features": {"item": {"topic": f"t{a}", "price": float(rng.random())}}}
        for a in range(4)
    ]
    return DecisionRequest(event_id=f"ev-{i}", context=context, actions=actions)


SHAPES = {"core": make_request, "compact": compact_request}


def records_pool(engine: DecisionEngine, n: int, shape: str, distinct: int = 500) -> list[dict]:
    """`n` records cloned from `distinct` real decisions (event ids: see `renumber`)."""
    rng = np.random.default_rng(0)
    request = SHAPES[shape]
    base = [engine.decide_logged(request(rng, i))[1][0] for i in range(distinct)]
    return [orjson.loads(orjson.dumps(base[i % distinct])) for i in range(n)]


def renumber(records: list[dict]) -> list[dict]:
    """A fresh event id and decision time for every record (untimed), so each run logs new
    decisions, made one after the other as a service makes them."""
    start = time.time()
    for i, rec in enumerate(records):
        event_id = uuid.uuid4().hex
        rec["EventId"] = event_id
        rec[META_KEY]["event_id"] = event_id
        rec[META_KEY]["decided_at"] = start + i * 1e-5
    return records


def forget_events(log: EventLog, app: str) -> None:
    """Delete the app's logged events and pending set (what the join would take away)."""
    keys = AppKeys(app)
    found = list(log.client.scan_iter(match=keys.event("*"), count=5000))
    for start in range(0, len(found), 1000):
        log.client.unlink(*found[start : start + 1000])
    log.client.unlink(keys.pending)


def batched(log: EventLog, app: str, records: list[dict], size: int = 1000) -> float:
    t = time.perf_counter()
    for start in range(0, len(records), size):
        log.decisions.write(app, records[start : start + size])
    return len(records) / (time.perf_counter() - t)


def threads(log: EventLog, app: str, records: list[dict], n_threads: int = 16) -> float:
    shares = [records[i::n_threads] for i in range(n_threads)]

    writer = DecisionWriter(log.decisions)

    def work(share: list[dict]) -> None:
        for rec in share:
            writer.submit(app, [rec]).result()

    workers = [threading.Thread(target=work, args=(s,)) for s in shares]
    t = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    rate = len(records) / (time.perf_counter() - t)
    writer.close()
    return rate


def single(log: EventLog, app: str, records: list[dict]) -> tuple[float, np.ndarray]:
    lat = np.empty(len(records))
    t0 = time.perf_counter()
    for i, rec in enumerate(records):
        t = time.perf_counter()
        log.decisions.write(app, [rec])
        lat[i] = time.perf_counter() - t
    return len(records) / (time.perf_counter() - t0), lat


def plot(results: dict[str, float], shape: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    names = list(results)
    ax.barh(names, [results[k] for k in names], color="#4878cf")
    ax.axvline(TARGET, color="#d65f5f", linestyle="--", label=f"target {TARGET:,}/s")
    ax.set_xlabel("records / s into Redis (one process)")
    ax.set_title(f"Decision logging ({shape})")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=40_000, help="records per batched run")
    ap.add_argument(
        "--shape",
        choices=sorted(SHAPES),
        default="core",
        help="core: 10 actions x 20 features (bench_core); compact: 4 actions x 3+2 features",
    )
    ap.add_argument("--redis-url", default=None)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument(
        "--grow", action="store_true", help="keep every round's events (Redis's dataset grows)"
    )
    ap.add_argument("--plot", type=Path, default=Path("runs/bench_logging.png"))
    args = ap.parse_args()

    with bench_redis(args.redis_url) as (url, tmp):
        log = EventLog(connect(url), spool_dir=tmp / "spool")
        config = AppConfig(
            name="bench-logging",
            policy={"kind": "vw", "action_id_feature": False},
            reward=RewardConfig(wait_seconds=3600.0),
        )
        log.drop_app(config.name)
        log.configs.put(config)
        engine = DecisionEngine(config)
        pool = records_pool(engine, args.n, args.shape)
        size = len(orjson.dumps(pool[0]))
        kept = "kept (dataset grows)" if args.grow else "deleted after each round"
        print(f"shape {args.shape!r}: records of {size} bytes of DSJson; events {kept}")

        results: dict[str, list[float]] = {"batched": [], "threads": [], "single": []}
        logged = 0
        lat = np.empty(0)
        forks: list[int] = []  # background AOF rewrites (a fork each) during a round
        for r in range(args.rounds):
            before = int(log.client.info("stats")["total_forks"])
            results["batched"].append(batched(log, config.name, renumber(pool)))
            forks.append(int(log.client.info("stats")["total_forks"]) - before)
            if not args.grow:
                forget_events(log, config.name)
            logged += len(pool)
            if r == 0:
                share = renumber(pool[:10_000])
                results["threads"].append(threads(log, config.name, share))
                rate, lat = single(log, config.name, renumber(pool[:2_000]))
                results["single"].append(rate)
                logged += len(share) + 2_000
        stats = log.joined.stats(config.name)
        assert stats["decisions"] == logged, (stats["decisions"], logged)
        log.drop_app(config.name)
        log.close()

    best = {k: max(v) for k, v in results.items()}
    median = float(np.median(results["batched"]))
    rounds = ", ".join(
        f"{x:,.0f}" + (" (AOF rewrite)" if f else "")
        for x, f in zip(results["batched"], forks, strict=True)
    )
    p50, p99 = np.percentile(lat, [50, 99]) * 1e6
    print(f"batched (1,000 per call): best {best['batched']:,.0f}  median {median:,.0f} records/s")
    print(f"  rounds: {rounds}")
    print(f"16 threads, 1 per call  : {best['threads']:,.0f} records/s (serving writer)")
    print(
        f"1 thread, 1 per call    : {best['single']:,.0f} records/s  p50 {p50:.0f} us  p99 {p99:.0f} us"
    )
    verdict = "met" if best["batched"] >= TARGET else "NOT met"
    print(
        f"target >= {TARGET:,}/s from one process (best round): {verdict} ({best['batched'] / TARGET:.2f}x)"
    )
    plot(best, args.shape, args.plot)
    print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
