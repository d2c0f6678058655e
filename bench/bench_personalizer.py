"""Personalizer-compatible rank vs the native decision route: same app, same run, real HTTP.

    python bench/bench_personalizer.py [--duration 10] [--rounds 6] [--connections 16]

One process starts Ray (2 CPUs), Serve on its HAProxy ingress and an embedded Redis, and
deploys banditrec with one app (VW epsilon-greedy, 10 actions x 10 features + 10 context
features, as bench_serve.py). The same decision is then asked for through both routes,
alternating round by round (ABBA), so drift in the machine's load hits both:

- native: `POST /v1/apps/bench/decisions` with `Authorization: Bearer <key>`;
- Personalizer: `POST /apps/bench/personalizer/v1.0/rank` with `Ocp-Apim-Subscription-Key`,
  the same features as Personalizer's lists of objects.

Every decision of both is logged to Redis before its answer. Printed: requests/s, p50 and p99
per route (mean over rounds), the Personalizer/native ratios, and the p50 ratio of each round
(the two routes measured back to back) with its median; the target is p50 <= 1.2x.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

import bench_serve


def rank_body(i: int) -> dict[str, Any]:
    """`bench_serve.decision_body(i)` in Personalizer's shape (features as lists of objects)."""
    native = bench_serve.decision_body(i)
    return {
        "contextFeatures": [{ns: feats} for ns, feats in native["context"].items()],
        "actions": [
            {"id": a["id"], "features": [{ns: f} for ns, f in a["features"].items()]}
            for a in native["actions"]
        ],
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--duration", type=float, default=10.0, help="Seconds per measurement.")
    ap.add_argument("--rounds", type=int, default=6, help="Alternating native/Personalizer rounds.")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--loader", choices=["auto", "wrk", "python"], default="auto")
    args = ap.parse_args()

    from banditrec.serving.runner import haproxy_env, stop_haproxy

    files = Path(tempfile.mkdtemp(prefix="brp-", dir="/tmp"))
    os.environ.update(haproxy_env(files))
    os.environ.setdefault("RAY_worker_niceness", "0")

    import orjson
    import ray
    from ray import serve

    from banditrec.eventlog import EmbeddedRedis, EventLog, connect
    from banditrec.eventlog.server import free_port
    from banditrec.serving.auth import create_key
    from banditrec.serving.deployment import deploy
    from banditrec.serving.runner import wait_ready
    from banditrec.serving.settings import ServiceSettings

    redis = EmbeddedRedis(files / "redis").start()
    port = free_port()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    base = f"http://127.0.0.1:{port}"
    key, record = create_key(["*"], ["admin"])
    policy = {"kind": "vw", "explorer": {"type": "epsilon", "epsilon": 0.1}}
    settings = ServiceSettings.model_validate(
        {
            "apps": [{"name": "bench", "policy": policy, "reward": {"wait_seconds": 30}}],
            "api_keys": [record.model_dump()],
        }
    )
    routes = {
        "native": (
            f"{base}/v1/apps/bench/decisions",
            orjson.dumps(bench_serve.decision_body(0)),
            {"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        ),
        "personalizer": (
            f"{base}/apps/bench/personalizer/v1.0/rank",
            orjson.dumps(rank_body(0)),
            {"Content-Type": "application/json", "Ocp-Apim-Subscription-Key": key},
        ),
    }
    runs: dict[str, list[dict]] = {name: [] for name in routes}
    try:
        deploy(redis.url, settings, spool_dir=str(files / "spool"))
        wait_ready(base, timeout_s=180)
        log = EventLog(connect(redis.url))
        before = log.joined.stats("bench").get("decisions", 0)
        for url, body, headers in routes.values():  # warm-up: connections, caches, VW
            bench_serve.load(url, body, headers, args.connections, 2, args.loader)
        for round_ in range(args.rounds):  # ABBA: neither route always goes first
            names = list(routes) if round_ % 2 == 0 else list(routes)[::-1]
            for name in names:
                url, body, headers = routes[name]
                runs[name].append(
                    bench_serve.load(
                        url, body, headers, args.connections, args.duration, args.loader
                    )
                )
        logged = log.joined.stats("bench").get("decisions", 0) - before
    finally:
        ray.shutdown()
        stop_haproxy(files)
        redis.stop()
        shutil.rmtree(files, ignore_errors=True)

    def mean(name: str, k: str) -> float:
        return sum(r[k] for r in runs[name]) / len(runs[name])

    print(
        f"\nloader: {runs['native'][0]['loader']}, {args.connections} connections, "
        f"{args.duration:g} s x {args.rounds} alternating rounds, 1 ingress replica"
    )
    print(f"{'route':<13} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}")
    for name in routes:
        errors = sum(r["errors"] for r in runs[name])
        print(
            f"{name:<13} {mean(name, 'rps'):>7.0f} {mean(name, 'p50_ms'):>7.2f} "
            f"{mean(name, 'p99_ms'):>7.2f} {errors:>6}"
        )
    p50 = mean("personalizer", "p50_ms") / mean("native", "p50_ms")
    per_round = sorted(
        p["p50_ms"] / n["p50_ms"] for p, n in zip(runs["personalizer"], runs["native"], strict=True)
    )
    print(f"p50 ratio per round: {', '.join(f'{r:.2f}' for r in per_round)}")
    print(f"median p50 ratio over rounds: x{statistics.median(per_round):.2f}")
    p99 = mean("personalizer", "p99_ms") / mean("native", "p99_ms")
    rps = mean("native", "rps") / mean("personalizer", "rps")
    print(f"\nPersonalizer / native: p50 x{p50:.2f}, p99 x{p99:.2f}, throughput cost x{rps:.2f}")
    print(f"target p50 <= 1.2x: {'met' if p50 <= 1.2 else 'NOT met'}")
    print(f"{logged} decisions logged to Redis during the runs")


if __name__ == "__main__":
    main()
