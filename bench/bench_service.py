"""The decision service without HTTP: what one replica's Python could do at best.

    python bench/bench_service.py [--rounds 4] [--duration 3]

In one process, alternating rounds (the machine's noise hits both alike), concurrent
callers on one event loop, as in a replica:
- the decision core: parse, validate, `engine.decide_logged` (the log records built), the
  response serialized; nothing sent anywhere;
- `DecisionService.decide` / `decide_batch`: the same plus every record logged to a real
  (embedded) Redis through the service's writer thread before the answer.

It prints decisions/s and this process's CPU per decision for both, single decisions (16
callers) and batches of 100 (4 callers). The gap is what logging costs the replica; the
HTTP layers (`bench_serve.py`) come on top of the second figure.

Reporting: after each round, the round's decisions are joined (not timed) and the
reporter counts them into the report buckets (timed, CPU of this process); its CPU per
event is printed against the service's CPU per decision (single requests) of the same
rounds. The replica's own share of reporting (its counters flushed to Redis once a
second) is inside the service figure.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

import orjson

from _redis import bench_redis
from banditrec.config import AppConfig
from banditrec.decision.schema import DecisionRequest
from banditrec.eventlog import EventLog, connect
from banditrec.reporting import Reporter
from banditrec.serving.service import DecisionService
from banditrec.serving.settings import ServiceSettings
from bench_serve import decision_body

APP = {
    "name": "bench",
    "policy": {"kind": "vw", "explorer": {"type": "epsilon", "epsilon": 0.1}},
    "reward": {"wait_seconds": 30},
}


async def measure(
    call: Callable[[], Awaitable[int]], callers: int, duration: float
) -> tuple[float, float]:
    """(decisions/s, CPU µs per decision) of `callers` concurrent loops of `call`."""
    done = 0
    stop = time.perf_counter() + duration

    async def caller() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            n = await call()  # not `done += await call()`: that reads `done` before the await
            done += n

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return done / wall, cpu / done * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--duration", type=float, default=3.0, help="Seconds per measurement.")
    ap.add_argument("--redis-url", help="Use this Redis instead of an embedded one.")
    args = ap.parse_args()

    with bench_redis(args.redis_url) as (url, _):
        log = EventLog(connect(url))
        config = AppConfig.model_validate(APP)
        log.configs.put(config)
        service = DecisionService(log, ServiceSettings.model_validate({"apps": [APP]}))
        engine = service.runtime("bench").engine
        single = orjson.dumps(decision_body(0))
        batch = orjson.dumps({"requests": [decision_body(i) for i in range(100)]})
        ids = service.event_ids
        limits = {"limits": config.limits}

        def core(items: list) -> int:
            decisions = []
            for item in items:
                request = DecisionRequest.model_validate(item | {"event_id": ids()}, context=limits)
                # as the service calls it, so that logging is the only difference
                decisions.append(engine.decide_logged(request, serialized_features=True)[0])
            orjson.dumps(decisions)
            return len(items)

        async def core_single() -> int:
            n = core([orjson.loads(single)])
            await asyncio.sleep(0)  # callers take turns, as requests do in a replica
            return n

        async def core_batch() -> int:
            n = core(orjson.loads(batch)["requests"])
            await asyncio.sleep(0)
            return n

        async def service_single() -> int:
            await service.decide("bench", single)
            return 1

        async def service_batch() -> int:
            return len(await service.decide_batch("bench", batch))

        cases = {
            ("single", "core"): (core_single, 16),
            ("single", "service"): (service_single, 16),
            ("batch", "core"): (core_batch, 4),
            ("batch", "service"): (service_batch, 4),
        }
        gc.collect()
        gc.freeze()  # as the ingress replica does after start-up
        results: dict[tuple[str, str], list[tuple[float, float]]] = {k: [] for k in cases}
        reporter, reporting = Reporter(log, "bench"), []
        for r in range(args.rounds):
            for key, (call, callers) in cases.items():
                asyncio.run(measure(call, callers, 0.5))  # warm-up
                results[key].append(asyncio.run(measure(call, callers, args.duration)))
            while log.join.join_due("bench", now=time.time() + 3600, limit=5000):
                pass
            cpu = time.process_time()
            counted = reporter.catch_up()
            reporting.append((time.process_time() - cpu) / max(counted, 1) * 1e6)
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
        service.close()
        log.close()

    print(f"\n{args.rounds} alternating rounds of {args.duration:g} s; medians")
    print(f"{'requests':<8} {'path':<28} {'decisions/s':>11} {'CPU µs/decision':>15}")
    labels = {"core": "core (no log)", "service": "service (logged to Redis)"}
    for kind in ("single", "batch"):
        rates = {}
        for path in ("core", "service"):
            runs = results[(kind, path)]
            rates[path] = statistics.median(r for r, _ in runs)
            cpu = statistics.median(c for _, c in runs)
            print(f"{kind:<8} {labels[path]:<28} {rates[path]:>11,.0f} {cpu:>15.1f}")
        print(f"{kind:<8} {'service / core':<28} {rates['service'] / rates['core']:>11.2f}")
    per_event = statistics.median(reporting)
    per_decision = statistics.median(c for _, c in results[("single", "service")])
    print(
        f"reporting: {per_event:.1f} CPU µs per joined event, "
        f"{per_event / per_decision:.1%} of the service's {per_decision:.1f} µs per decision"
    )


if __name__ == "__main__":
    main()
