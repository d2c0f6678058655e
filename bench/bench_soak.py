"""Soak: the whole service at half its measured capacity for a long run.

    python bench/bench_soak.py [--minutes 30] [--rate N] [--concurrency 8]

Starts the service as `banditrec serve` does (its own Ray, 2 CPUs, the example apps with
a 1 s reward wait, an embedded Redis, HAProxy), measures its capacity with this loader
(--concurrency connections, as fast as it answers, 15 s) unless --rate is given, then
sends decisions of the `content` and `channel` apps, each followed by its reward, at half
that rate for --minutes. Every 30 s it samples the resident memory of each ingress
replica and of the learner pool, and prints them.

Figure (issue: no request, config change or outage can stop the loop): zero errors, and
each process's memory grows by at most 5% from the first sample after a 2-minute warm-up
to the last (a shorter run warms up for a fifth of it).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).parent.parent))
sys.path.insert(0, str(Path(__file__).parent))
from tests.plugins.ray_cluster import example_request

from _service import bench_options
from banditrec.eventlog import EventLog, connect
from banditrec.serving.runner import LocalService
from banditrec.serving.settings import load_settings

APPS = ("content", "channel")
TARGET_GROWTH = 0.05


def service_processes() -> dict[int, str]:
    out = {}
    for proc in psutil.Process().children(recursive=True):
        try:
            cmd = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        for name in ("Ingress", "LearnerPool"):
            if f"ServeReplica:banditrec:{name}" in cmd:
                out[proc.pid] = name
    return out


async def drive(url: str, seconds: float, rate: float | None, concurrency: int) -> dict:
    """Decision + reward pairs for `seconds`; paced to `rate` pairs/s in total when given."""
    counts: dict = {"ok": 0, "errors": 0, "reward_s": []}
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    issued = 0

    async def worker(http: httpx.AsyncClient) -> None:
        nonlocal issued
        while time.perf_counter() < deadline:
            issued += 1
            i = issued
            if rate:
                await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
            app = APPS[i % len(APPS)]
            try:
                r = await http.post(f"/v1/apps/{app}/decisions", json=example_request(app, i))
                r.raise_for_status()
                sent = time.perf_counter()
                r = await http.post(
                    f"/v1/apps/{app}/rewards",
                    json={"event_id": r.json()["event_id"], "value": float(i % 2)},
                )
                r.raise_for_status()
                counts["reward_s"].append(time.perf_counter() - sent)
                if r.json()["outcome"] != "accepted":
                    raise httpx.HTTPError(f"reward outcome {r.json()['outcome']}")
                counts["ok"] += 1
            except httpx.HTTPError as exc:
                counts["errors"] += 1
                if counts["errors"] <= 5:
                    print(f"error: {exc!r}", flush=True)

    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
    counts["rate"] = counts["ok"] / (time.perf_counter() - started)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=None, help="pairs/s; default: half capacity")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    settings = load_settings(None)
    for app in settings.apps:
        app.reward.wait_seconds = 1.0
    options = bench_options(settings, "bench-soak-", 2)
    with LocalService(options) as service:
        rate = args.rate
        if rate is None:
            capacity = asyncio.run(drive(service.url, 15.0, None, args.concurrency))["rate"]
            rate = capacity / 2
            print(f"capacity with this loader: {capacity:.0f} decision+reward pairs/s", flush=True)
        seconds = args.minutes * 60
        warmup = min(120.0, seconds / 5)
        samples: dict[int, list[tuple[float, int]]] = {}
        names = service_processes()

        async def run() -> dict:
            load = asyncio.create_task(drive(service.url, seconds, rate, args.concurrency))
            start = time.perf_counter()
            while not load.done():
                elapsed = time.perf_counter() - start
                for pid in names:
                    try:
                        rss = psutil.Process(pid).memory_info().rss
                    except psutil.Error:
                        continue
                    samples.setdefault(pid, []).append((elapsed, rss))
                line = "  ".join(
                    f"{names[pid]} {series[-1][1] / 2**20:.0f}" for pid, series in samples.items()
                )
                print(f"{elapsed:5.0f} s  RSS MiB: {line}", flush=True)
                await asyncio.wait([load], timeout=30.0)
            return load.result()

        counts = asyncio.run(run())
        stats = {app: EventLog(connect(service.redis_url)).joined.stats(app) for app in APPS}
    print(
        f"{args.minutes:g} min at {rate:.0f} pairs/s: {counts['ok']} pairs, {counts['errors']} errors"
    )
    latency = sorted(counts["reward_s"])
    if latency:
        p99 = latency[int(0.99 * (len(latency) - 1))]
        print(
            f"single reward calls: p50 {1000 * latency[len(latency) // 2]:.1f} ms, "
            f"p99 {1000 * p99:.1f} ms, max {1000 * latency[-1]:.1f} ms"
        )
    worst = 0.0
    for pid, series in samples.items():
        after = [rss for t, rss in series if t >= warmup]
        if len(after) < 2:
            continue
        growth = (after[-1] - after[0]) / after[0]
        worst = max(worst, growth)
        print(
            f"{names[pid]:<12} pid {pid}: RSS {after[0] / 2**20:.0f} -> {after[-1] / 2**20:.0f} MiB "
            f"({100 * growth:+.1f}%) over {series[-1][0] - warmup:.0f} s after warm-up"
        )
    for app, s in stats.items():
        print(
            f"{app}: decisions {s.get('decisions')}, joined {s.get('joined')}, learned "
            f"{s.get('learned')}, pending {s.get('pending_events')}"
        )
    ok = counts["errors"] == 0 and worst <= TARGET_GROWTH
    print(
        f"zero errors and memory growth <= {100 * TARGET_GROWTH:.0f}%: {'PASS' if ok else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
