"""Recovery under load: the learner pool killed, an ingress replica killed (SIGKILL).

    python bench/bench_recovery.py [--rate 100] [--rounds 2]

Starts the service as `banditrec serve` does (its own Ray, 2 CPUs, 2 ingress replicas, the
example apps with a 1 s reward wait, an embedded Redis), drives the `channel` app at
--rate decisions/s, each with its reward, and kills, once per round:

- the LearnerPool replica: "learner back and caught up" is the time from the kill until
  a model published after it has learned every event joined more than 0.5 s earlier;
- one Ingress replica: "replacement replica serving" is the time from the kill until a
  new replica process exists and Serve reports two Ingress replicas RUNNING again
  (HAProxy routes to running replicas).

Also printed: requests that failed during the run (the other replica keeps answering).

Figure (issue: no request, config change or outage can stop the loop): both times halved
from ~10 s (learner) and ~12 s (replica).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
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

APP = "channel"


def replica_pids(deployment: str) -> list[int]:
    """Live replicas of this run's own Ray (its process tree, not another Ray's)."""
    marker = f"ServeReplica:banditrec:{deployment}"
    out = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if marker in " ".join(proc.cmdline()) and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc.pid)
        except psutil.Error:
            continue
    return out


def load(url: str, rate: float, stop: threading.Event, counts: dict[str, int]) -> None:
    with httpx.Client(base_url=url, timeout=10) as http:
        i, started = 0, time.perf_counter()
        while not stop.is_set():
            time.sleep(max(0.0, started + i / rate - time.perf_counter()))
            i += 1
            try:
                r = http.post(f"/v1/apps/{APP}/decisions", json=example_request(APP, i))
                if r.status_code != 200:
                    counts["failed"] += 1
                    continue
                event_id = r.json()["event_id"]
                r = http.post(f"/v1/apps/{APP}/rewards", json={"event_id": event_id, "value": 1})
                counts["ok" if r.status_code == 200 else "failed"] += 1
            except httpx.HTTPError:
                counts["failed"] += 1


def learner_recovery(log: EventLog, phases: list[float]) -> float:
    (pid,) = replica_pids("LearnerPool")
    killed = time.time()
    os.kill(pid, signal.SIGKILL)
    respawned = None
    while True:
        time.sleep(0.05)
        if respawned is None and set(replica_pids("LearnerPool")) - {pid}:
            respawned = time.time() - killed
            phases.append(respawned)
        model = log.models.latest(APP)
        if (
            model is not None
            and model.created_at > killed
            and log.joined.lags(APP).learner_lag_s < 0.5
        ):
            return time.time() - killed


def replica_recovery() -> float:
    from ray import serve

    before = set(replica_pids("Ingress"))
    killed = time.time()
    os.kill(min(before), signal.SIGKILL)
    while True:
        status = serve.status().applications["banditrec"].deployments["Ingress"]
        new = set(replica_pids("Ingress")) - before
        if new and status.replica_states.get("RUNNING", 0) >= 2:
            return time.time() - killed
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    settings = load_settings(None)
    for app in settings.apps:
        app.reward.wait_seconds = 1.0
    options = bench_options(settings, "bench-recovery-", 2)
    counts = {"ok": 0, "failed": 0}
    learner: list[float] = []
    replica: list[float] = []
    respawned: list[float] = []
    with LocalService(options) as service:
        log = EventLog(connect(service.redis_url))
        stop = threading.Event()
        thread = threading.Thread(target=load, args=(service.url, args.rate, stop, counts))
        thread.start()
        try:
            time.sleep(5.0)
            for _ in range(args.rounds):
                learner.append(learner_recovery(log, respawned))
                time.sleep(3.0)
                replica.append(replica_recovery())
                time.sleep(3.0)
        finally:
            stop.set()
            thread.join()
    print(f"under load of {args.rate:.0f} decisions/s (+ rewards), {args.rounds} rounds:")
    print("learner back and caught up, s:  " + ", ".join(f"{t:.1f}" for t in learner))
    print(
        "  of which until its process was started, s: " + ", ".join(f"{t:.1f}" for t in respawned)
    )
    print("replacement replica serving, s: " + ", ".join(f"{t:.1f}" for t in replica))
    print(f"decision+reward pairs: {counts['ok']} ok, {counts['failed']} failed")


if __name__ == "__main__":
    main()
