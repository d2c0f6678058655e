"""Idle CPU: what each process of a running service takes while no request comes.

    python bench/bench_idle.py [--seconds 30] [--replicas 2]

Starts the service as `banditrec serve` does (its own Ray, 2 CPUs, the example apps, an
embedded Redis, HAProxy), sends a few decisions and rewards so every app has a model,
waits until the learners have published them, then measures each process this run
started (its own process tree only, not other Ray instances on the machine) over
--seconds of silence, in % of one core.

A no-op Serve deployment (a FastAPI app answering a constant, deployed as the Ingress is)
runs beside it as the baseline: what any Serve replica costs idle, in the same run.

Figure (issue: no request, config change or outage can stop the loop): every replica and
the learner pool <= 1% of a core each when idle, above that baseline.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
from _service import bench_options
from banditrec.serving.runner import LocalService
from banditrec.serving.settings import load_settings

TARGET_PERCENT = 1.0
GROUPS = (
    ("no-op replica (baseline)", "ServeReplica:noop"),
    ("replica (Ingress)", "ServeReplica:banditrec:Ingress"),
    ("learner pool", "ServeReplica:banditrec:LearnerPool"),
    ("redis-server", "redis-server"),
    ("haproxy", "haproxy"),
    ("Serve controller", "ServeController"),
    ("Serve proxy actor", "ProxyActor"),
    ("HAProxy manager", "HAProxyManager"),
    ("raylet", "raylet"),
    ("gcs_server", "gcs_server"),
)


def label(proc: psutil.Process) -> str:
    try:
        cmd = " ".join(proc.cmdline())
    except psutil.Error:
        return "gone"
    for name, marker in GROUPS:
        if marker in cmd:
            return name
    return "other Ray processes"


def cpu_seconds(procs: list[psutil.Process]) -> dict[int, float]:
    out = {}
    for p in procs:
        try:
            t = p.cpu_times()
            out[p.pid] = t.user + t.system
        except psutil.Error:
            pass
    return out


def deploy_noop() -> None:
    from fastapi import FastAPI
    from ray import serve
    from starlette.responses import Response

    from banditrec.serving.deployment import INGRESS_ENV, INGRESS_LOGGING

    noop_api = FastAPI()

    @noop_api.post("/")
    async def noop() -> Response:
        return Response(b'{"ok":true}', media_type="application/json")

    @serve.deployment(
        logging_config=INGRESS_LOGGING,
        ray_actor_options={"num_cpus": 0.25, "runtime_env": {"env_vars": INGRESS_ENV}},
    )
    @serve.ingress(noop_api)
    class Noop:
        pass

    serve.run(Noop.bind(), name="noop", route_prefix="/noop")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--replicas", type=int, default=2)
    args = parser.parse_args()
    from tests.plugins.ray_cluster import example_request

    settings = load_settings(None)
    options = bench_options(settings, "bench-idle-", args.replicas)
    with LocalService(options) as service:
        deploy_noop()
        with httpx.Client(base_url=service.url, timeout=10) as http:
            for app in ("content", "channel", "send_time"):
                for i in range(20):
                    d = http.post(f"/v1/apps/{app}/decisions", json=example_request(app, i)).json()
                    http.post(
                        f"/v1/apps/{app}/rewards", json={"event_id": d["event_id"], "value": 1}
                    )
        time.sleep(5.0)  # settle: joins at the reward wait are not idle work, skip them
        me = psutil.Process(os.getpid())
        procs = me.children(recursive=True)
        before_self = me.cpu_times()
        before = cpu_seconds(procs)
        started = time.perf_counter()
        time.sleep(args.seconds)
        elapsed = time.perf_counter() - started
        after = cpu_seconds(procs)
        after_self = me.cpu_times()
        by_proc: dict[str, list[float]] = defaultdict(list)
        for p in procs:
            if p.pid in before and p.pid in after:
                by_proc[label(p)].append(100 * (after[p.pid] - before[p.pid]) / elapsed)
        driver = after_self.user + after_self.system - before_self.user - before_self.system
        by_proc["serve (driver) process"].append(100 * driver / elapsed)
    print(
        f"idle CPU over {elapsed:.0f} s, % of one core per process ({args.replicas} replicas, "
        f"{len(settings.apps)} apps)"
    )
    print(f"{'process':<28}{'each':>24}")
    for name, values in sorted(by_proc.items(), key=lambda kv: -max(kv[1])):
        each = ", ".join(f"{v:.2f}" for v in sorted(values, reverse=True)[:6])
        print(f"{name:<28}{each:>24}")
    ours = by_proc.get("replica (Ingress)", []) + by_proc.get("learner pool", [])
    baseline = by_proc.get("no-op replica (baseline)", [0.0])[0]
    worst = max(ours) - baseline
    verdict = "PASS" if worst <= TARGET_PERCENT else "FAIL"
    print(
        f"replicas and learner pool <= {TARGET_PERCENT}% each above the no-op replica: {verdict} "
        f"(max {max(ours):.2f}% - {baseline:.2f}% = {worst:.2f}%)"
    )


if __name__ == "__main__":
    main()
