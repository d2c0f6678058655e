"""Server time of the dashboard's data: `GET /v1/report` for 10 apps × 30 days of hour buckets.

    python bench/bench_dashboard.py [--apps 10] [--days 30] [--arms 3] [--repeat 20]

Fills an embedded Redis with the buckets of `--apps` apps, each with `--arms` arms and
decisions in every hour of the last `--days` days (what the reporter writes), then times
the route in-process through FastAPI (the ASGI app the replica serves, no network): the
median of `--repeat` requests, the route's own `server_seconds` (reading and
summarizing the buckets, wall time), and the CPU time of this process per request (the
figure to read on a busy machine, where wall time includes waiting for a core).
"""

from __future__ import annotations

import argparse
import statistics
import time

from fastapi.testclient import TestClient

from _redis import bench_redis
from banditrec.eventlog import AppKeys, EventLog, connect
from banditrec.reporting import ReportStore
from banditrec.reporting.buckets import Delta, bucket_key
from banditrec.serving.app import create_api
from banditrec.serving.service import DecisionService
from banditrec.serving.settings import ServiceSettings


def fill(store: ReportStore, app: str, days: int, arms: int, now: float) -> None:
    """An hour bucket for every hour of the last `days` days, for each arm."""
    delta = Delta.empty(AppKeys(app).base)
    start = int(now // 3600) * 3600 - days * 86400
    for t in range(start, start + days * 86400 + 1, 3600):
        key = bucket_key(delta.base, "hour", t)
        for a in range(arms):
            sums = [1000.0, 300.0 + a, 300.0 + a, 50.0, 280.0, 900.0]  # n, r, q, x, b, bq
            delta.cells[key, f"arm{a}"][str(t)] = {"s": sums}
        delta.cells[key, "*"][str(t)] = {"v": {"7": 1000 * arms}, "jl": 0.4, "ll": 120.0}
    store.apply(app, delta, None, None)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--apps", type=int, default=10)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--arms", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--redis-url")
    args = ap.parse_args()
    with bench_redis(args.redis_url) as (url, _):
        log = EventLog(connect(url))
        apps = [{"name": f"app{i}"} for i in range(args.apps)]
        settings = ServiceSettings.model_validate({"apps": apps})
        for config in settings.apps:
            log.configs.put(config)
        store, now = ReportStore(log.client), time.time()
        for config in settings.apps:
            fill(store, config.name, args.days, args.arms, now)
        service = DecisionService(log, settings, open_access=True)
        client = TestClient(create_api(service))
        path = f"/v1/report?resolution=hour&hours={args.days * 24}"
        walls, servers, cpus = [], [], []
        for _ in range(args.repeat + 2):
            t, c = time.perf_counter(), time.process_time()
            r = client.get(path)
            walls.append(time.perf_counter() - t)
            cpus.append(time.process_time() - c)
            body = r.json()
            servers.append(body["server_seconds"])
        walls, servers, cpus = walls[2:], servers[2:], cpus[2:]  # warm-up
        buckets = sum(len(rep["buckets"]["start"]) for rep in body["apps"].values())
        service.close()
        log.close()
    print(
        f"{args.apps} apps × {args.days} days of hour buckets × {args.arms} arms: "
        f"{buckets} buckets, {len(r.content) / 1e6:.1f} MB of JSON"
    )
    print(f"report built (server_seconds), median: {statistics.median(servers) * 1e3:.0f} ms")
    print(f"whole request in-process, median:      {statistics.median(walls) * 1e3:.0f} ms")
    print(f"CPU of the whole request, median:      {statistics.median(cpus) * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
