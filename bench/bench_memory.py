"""Memory of the learner side (joiner, learner, reporting pool) over many events, in-process.

    python bench/bench_memory.py [--seconds 150] [--rate 400] [--top 15] [--redis-url URL]

What the `LearnerPool` deployment runs (a `LearnerPool` and a `ReportingPool` on one
EventLog), without Ray, on an embedded Redis: the example apps `content` and `channel`
(reward wait 1 s) get decisions logged as a replica logs them, each followed by its reward,
at --rate pairs/s in total, for --seconds. It prints the process's RSS per events joined
(every 10% of the run; with tracemalloc on, its own traces and snapshots add to the RSS:
use --no-tracemalloc for the RSS figure) and, between a snapshot after the first fifth of the run and one
at the end, the `tracemalloc` lines whose allocations grew most (by traceback).

Figure (the soak's, bench_soak.py): RSS after the warm-up fifth grows by at most 5%, and no
traceback's allocations grow with the number of events.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import gc
import linecache
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).parent.parent))
sys.path.insert(0, str(Path(__file__).parent))
from banditrec.schema import DecisionRequest, Reward
from tests.plugins.ray_cluster import example_request

from _redis import bench_redis
from banditrec import DecisionEngine
from banditrec.eventlog import EventLog, connect
from banditrec.reporting import ReportingPool
from banditrec.serving.learners import LearnerPool
from banditrec.serving.settings import load_settings

APPS = ("content", "channel")
TARGET_GROWTH = 0.05


def drive(log: EventLog, seconds: float, rate: float, stop: threading.Event) -> int:
    """Decision + reward pairs, in batches of 20 per app, paced to `rate`; how many were sent."""
    engines = {app: DecisionEngine(log.get_config(app)) for app in APPS}  # type: ignore[arg-type]
    sent = 0
    started = time.perf_counter()
    batch = 20
    while not stop.is_set() and time.perf_counter() - started < seconds:
        for app in APPS:
            decided = [
                engines[app].decide_logged(
                    DecisionRequest.model_validate(example_request(app, sent + i)),
                    serialized_features=True,
                )
                for i in range(batch)
            ]
            log.log_decisions(app, [rec for _, recs in decided for rec in recs])
            rewards = [
                Reward(event_id=d.event_id, value=float(i % 2)) for i, (d, _) in enumerate(decided)
            ]
            log.add_rewards(app, rewards)
            sent += batch
        time.sleep(max(0.0, started + sent / rate - time.perf_counter()))
    return sent


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in [
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        ]
    ]


def _libc() -> ctypes.CDLL | None:
    """glibc (mallinfo2, malloc_trim), or None on another C library."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.mallinfo2.restype = _MallInfo2
        return libc
    except (OSError, AttributeError, TypeError):
        return None


LIBC = _libc()


def malloc_in_use() -> int:
    """Bytes glibc's malloc has handed out and not had back (all arenas and mmapped chunks):
    what a leak grows; RSS beyond it is memory malloc keeps free (fragmentation)."""
    if LIBC is None:
        return 0
    info = LIBC.mallinfo2()
    return info.uordblks + info.hblkhd


def joined(log: EventLog) -> int:
    return sum(log.stats(app).get("joined", 0) for app in APPS)


def show_top(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, top: int) -> None:
    filters = [tracemalloc.Filter(False, tracemalloc.__file__)]
    stats = after.filter_traces(filters).compare_to(before.filter_traces(filters), "traceback")
    print(f"\ntop {top} allocation growth by traceback (after warm-up -> end):")
    for stat in sorted(stats, key=lambda s: s.size_diff, reverse=True)[:top]:
        print(f"{stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks")
        for frame in stat.traceback.format(limit=4, most_recent_first=True)[::2]:
            print(f"      {frame.strip()}")
    total = sum(s.size_diff for s in stats)
    print(f"all tracebacks: {total / 2**20:+.2f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=150.0)
    parser.add_argument("--rate", type=float, default=400.0, help="pairs/s over both apps")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--no-tracemalloc", action="store_true", help="RSS only (no overhead)")
    parser.add_argument("--redis-url", default=None)
    args = parser.parse_args()
    process = psutil.Process()
    if not args.no_tracemalloc:
        tracemalloc.start(8)
    with bench_redis(args.redis_url) as (url, _):
        log = EventLog(connect(url))
        for app in load_settings(None).apps:
            app.reward.wait_seconds = 1.0
            log.put_config(app)
        pool = LearnerPool(log)
        reports = ReportingPool(log)
        stop = threading.Event()
        result: dict[str, int] = {}
        load = threading.Thread(
            target=lambda: result.setdefault("sent", drive(log, args.seconds, args.rate, stop))
        )
        started = time.perf_counter()
        load.start()
        warm = args.seconds / 5
        rss: list[tuple[float, int, int]] = []
        before = None
        next_sample = 0.0
        while load.is_alive():
            load.join(timeout=1.0)
            elapsed = time.perf_counter() - started
            if before is None and elapsed >= warm and not args.no_tracemalloc:
                gc.collect()
                before = tracemalloc.take_snapshot()
            if elapsed >= next_sample or not load.is_alive():
                rss.append((elapsed, joined(log), process.memory_info().rss))
                n, mib = rss[-1][1], rss[-1][2] / 2**20
                print(
                    f"{elapsed:6.0f} s  {n:8d} joined  RSS {mib:6.1f} MiB  "
                    f"malloc in use {malloc_in_use() / 2**20:6.1f} MiB",
                    flush=True,
                )
                next_sample += args.seconds / 10
        time.sleep(2.0)  # the last rewards join, learn, report
        gc.collect()
        end_rss = process.memory_info().rss
        if LIBC is not None:
            LIBC.malloc_trim(0)
            trimmed = process.memory_info().rss / 2**20
            print(f"after malloc_trim(0): RSS {trimmed:.1f} MiB", flush=True)
        after = tracemalloc.take_snapshot() if before is not None else None
        pool.close()
        reports.close()
        stats = {app: log.stats(app) for app in APPS}
        log.close()
    print(f"\n{result.get('sent', 0)} pairs in {args.seconds:g} s at {args.rate:g} pairs/s")
    for app, s in stats.items():
        print(f"{app}: " + ", ".join(f"{k} {v}" for k, v in s.items()))
    base = next((r for r in rss if r[0] >= warm), rss[0])
    growth = (end_rss - base[2]) / base[2]
    per_k = (end_rss - base[2]) / max(1, joined_end(stats) - base[1]) * 1000
    print(
        f"RSS after warm-up {base[2] / 2**20:.1f} -> {end_rss / 2**20:.1f} MiB ({100 * growth:+.1f}%), "
        f"{per_k / 1024:+.2f} KiB per 1000 events joined "
        f"(target <= {100 * TARGET_GROWTH:.0f}%: {'PASS' if growth <= TARGET_GROWTH else 'FAIL'})"
    )
    if before is not None and after is not None:
        linecache.clearcache()
        show_top(before, after, args.top)


def joined_end(stats: dict[str, dict[str, int]]) -> int:
    return sum(s.get("joined", 0) for s in stats.values())


if __name__ == "__main__":
    main()
