"""HTTP decision service on Ray Serve: decisions against a no-op Serve endpoint, same ingress.

    python bench/bench_serve.py [--duration 10] [--rounds 2] [--paths haproxy,default]

Each ingress path runs in its own process with its own Ray (2 CPUs), Serve and embedded
Redis, serving two applications side by side: a no-op FastAPI endpoint (reads the body,
answers a constant) and banditrec (VW epsilon-greedy, 10 actions x 20 features, API key
checked, every decision logged to Redis before the answer). The load generator is `wrk`
when installed, else a Python asyncio loader; it runs on 127.0.0.1 only, bounded in time.

Figures (issue: HTTP decision service): single decisions at 16 connections reach >= 0.8x
the no-op endpoint's throughput on the same ingress path (measured in the same run,
alternating), with p99 <= 25 ms; the batch endpoint (100 decisions per request) >= 10,000
decisions/s; both also on Serve's default proxy path, to show the gain.

Each run also records where the machine's CPU went (the replica, Redis, HAProxy, Ray's own
processes, the load generator, idle), in cores: a busy replica beside idle cores means the
figure is bound by that one Python process, not by the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _cpu as cpu

PATHS = ("haproxy", "default")
N_ACTIONS = 10


def decision_body(i: int) -> dict[str, Any]:
    """10 context features shared by all actions + 10 features of each action (as bench_core)."""
    context = {
        "user": {f"u{j}": round(((i * 7 + j) % 13) / 13, 3) for j in range(9)} | {"country": "IN"}
    }
    actions = [
        {
            "id": f"article-{a}",
            "features": {
                "topic": {f"t{j}": round(((a * 5 + j + i) % 11) / 11, 3) for j in range(10)}
            },
        }
        for a in range(N_ACTIONS)
    ]
    return {"context": context, "actions": actions}


# --- load generators ---------------------------------------------------------------------


def run_wrk(
    url: str, body: bytes, headers: dict[str, str], connections: int, duration: float
) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(body.decode())}"]
        lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
        f.write("\n".join(lines) + "\n")
        script = f.name
    threads = min(2, connections)
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration:g}s",
        "--latency",
        "-s",
        script,
        url,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60).stdout
    os.unlink(script)

    def ms(label: str) -> float:
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if m is None:
            return float("nan")
        return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "p50_ms": ms("50"),
        "p99_ms": ms("99"),
        "errors": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "",
        "loader": "wrk",
    }


async def _python_load(
    url: str, body: bytes, headers: dict[str, str], connections: int, duration: float
) -> dict:
    host, port_path = url.split("://", 1)[1].split(":", 1)
    port, path = port_path.split("/", 1)
    head = f"POST /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = head.encode() + b"\r\n" + body
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration

    async def connection() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", int(port))
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            if not status_line.startswith(b"HTTP/1.1 2"):
                errors += 1
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(q: float) -> float:
        return (
            latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1e3
            if latencies
            else float("nan")
        )

    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
        "errors": errors,
        "socket_errors": "",
        "loader": "python",
    }


def load(
    url: str, body: bytes, headers: dict[str, str], connections: int, duration: float, loader: str
) -> dict:
    if loader == "wrk" or (loader == "auto" and shutil.which("wrk")):
        return run_wrk(url, body, headers, connections, duration)
    return asyncio.run(_python_load(url, body, headers, connections, duration))


# --- one ingress path, in its own process ------------------------------------------------


def phase(path: str, args: argparse.Namespace) -> dict:
    from banditrec.serving.runner import haproxy_env, stop_haproxy

    files = Path(tempfile.mkdtemp(prefix="brb-", dir="/tmp"))
    if path == "haproxy":
        os.environ.update(haproxy_env(files))
    os.environ.setdefault("RAY_worker_niceness", "0")  # as `banditrec serve` runs replicas

    import orjson
    import ray
    from fastapi import FastAPI, Request
    from ray import serve
    from starlette.responses import Response

    from banditrec.eventlog import EmbeddedRedis, EventLog, connect
    from banditrec.eventlog.server import free_port
    from banditrec.serving.auth import create_key
    from banditrec.serving.deployment import INGRESS_ENV, INGRESS_LOGGING, deploy
    from banditrec.serving.runner import wait_ready
    from banditrec.serving.settings import ServiceSettings

    noop_api = FastAPI()

    @noop_api.post("/")
    async def noop(request: Request) -> Response:
        await request.body()
        return Response(b'{"ok":true}', media_type="application/json")

    # Deployed exactly as the Ingress is (same logging, user code on the replica's loop).
    @serve.deployment(
        max_ongoing_requests=256,
        logging_config=INGRESS_LOGGING,
        ray_actor_options={"num_cpus": 0.25, "runtime_env": {"env_vars": INGRESS_ENV}},
    )
    @serve.ingress(noop_api)
    class Noop:
        pass

    redis = EmbeddedRedis(files / "redis").start()
    port = free_port()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    base = f"http://127.0.0.1:{port}"
    key, record = create_key(["*"], ["admin"])
    settings = ServiceSettings.model_validate(
        {
            "apps": [
                {
                    "name": "bench",
                    "policy": {"kind": "vw", "explorer": {"type": "epsilon", "epsilon": 0.1}},
                    "reward": {"wait_seconds": 30},
                }
            ],
            "api_keys": [record.model_dump()],
        }
    )
    try:
        serve.run(
            Noop.options(num_replicas=args.replicas).bind(), name="noop", route_prefix="/noop"
        )
        deploy(
            redis.url,
            settings,
            spool_dir=str(files / "spool"),
            ingress_options={"num_replicas": args.replicas},
        )
        wait_ready(base, timeout_s=180)
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
        single = orjson.dumps(decision_body(0))
        batch = orjson.dumps({"requests": [decision_body(i) for i in range(args.batch_size)]})
        noop_url, decide_url = f"{base}/noop/", f"{base}/v1/apps/bench/decisions"
        batch_url = f"{base}/v1/apps/bench/decisions:batch"
        log = EventLog(connect(redis.url))

        def run(url: str, body: bytes, connections: int, duration: float) -> dict:
            before = cpu.snapshot()
            result = load(url, body, headers, connections, duration, args.loader)
            return result | {"cpu": cpu.usage(before, cpu.snapshot())}

        run(noop_url, single, args.connections, 2)  # warm-up: connections, caches, JIT of VW
        run(decide_url, single, args.connections, 2)
        noop_runs, decide_runs = [], []
        logged_before = log.joined.stats("bench").get("decisions", 0)
        answered = 0
        for _ in range(args.rounds):  # alternating, so drift in the machine's load hits both
            noop_runs.append(run(noop_url, single, args.connections, args.duration))
            decide_runs.append(run(decide_url, single, args.connections, args.duration))
            answered += round(decide_runs[-1]["rps"] * args.duration)
        batch_run = run(batch_url, batch, args.batch_connections, args.duration)
        logged = log.joined.stats("bench").get("decisions", 0) - logged_before
    finally:
        ray.shutdown()
        stop_haproxy(files)
        redis.stop()
        shutil.rmtree(files, ignore_errors=True)

    def mean(runs: list[dict], k: str) -> float:
        return sum(r[k] for r in runs) / len(runs)

    return {
        "path": path,
        "loader": noop_runs[0]["loader"],
        "noop_rps": mean(noop_runs, "rps"),
        "noop_p99_ms": mean(noop_runs, "p99_ms"),
        "decide_rps": mean(decide_runs, "rps"),
        "decide_p50_ms": mean(decide_runs, "p50_ms"),
        "decide_p99_ms": mean(decide_runs, "p99_ms"),
        "ratio": mean(decide_runs, "rps") / mean(noop_runs, "rps"),
        "decide_errors": sum(r["errors"] for r in decide_runs),
        "batch_rps": batch_run["rps"],
        "batch_decisions_per_s": batch_run["rps"] * args.batch_size,
        "batch_p99_ms": batch_run["p99_ms"],
        "batch_errors": batch_run["errors"],
        "cpu_noop": cpu.mean([r["cpu"] for r in noop_runs]),
        "cpu_decide": cpu.mean([r["cpu"] for r in decide_runs]),
        "cpu_batch": batch_run["cpu"],
        "decisions_logged": logged,
        "decisions_answered_approx": answered,
    }


# --- driver ----------------------------------------------------------------------------------


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    names = [r["path"] for r in results]
    x = range(len(results))
    ax1.bar([i - 0.2 for i in x], [r["noop_rps"] for r in results], 0.4, label="no-op endpoint")
    ax1.bar(
        [i + 0.2 for i in x], [r["decide_rps"] for r in results], 0.4, label="decision (10 actions)"
    )
    ax1.set_xticks(list(x), names)
    ax1.set_ylabel("requests/s at 16 connections")
    ax1.legend()
    ax2.bar(list(x), [r["batch_decisions_per_s"] for r in results], 0.5, color="tab:green")
    ax2.axhline(10_000, color="grey", ls="--", lw=1, label="10,000/s")
    ax2.set_xticks(list(x), names)
    ax2.set_ylabel("decisions/s (batch of 100)")
    ax2.legend()
    fig.suptitle("banditrec on Ray Serve, 2-core machine")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--duration", type=float, default=10.0, help="Seconds per measurement.")
    ap.add_argument("--rounds", type=int, default=2, help="Alternating no-op/decision rounds.")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--batch-connections", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--replicas", type=int, default=1, help="Replicas of each endpoint.")
    ap.add_argument("--paths", default=",".join(PATHS), help="haproxy and/or default.")
    ap.add_argument("--loader", choices=["auto", "wrk", "python"], default="auto")
    ap.add_argument("--plot", type=Path, default=Path("runs/bench_serve.png"))
    ap.add_argument("--phase", choices=PATHS, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.phase:
        print(json.dumps(phase(args.phase, args)))
        return

    results = []
    for path in args.paths.split(","):
        cmd = [sys.executable, __file__, "--phase", path, *sys.argv[1:]]
        print(f"measuring the {path} ingress path ...", file=sys.stderr, flush=True)
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"the {path} phase failed")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))

    print(
        f"\nloader: {results[0]['loader']}, {args.connections} connections, "
        f"{args.duration:g} s x {args.rounds} rounds, {args.replicas} replica(s) per endpoint"
    )
    print(
        f"{'ingress':<9} {'no-op req/s':>11} {'decide req/s':>12} {'ratio':>6} {'p50 ms':>7} {'p99 ms':>7} {'batch dec/s':>12} {'batch p99':>9} {'errors':>6}"
    )
    for r in results:
        print(
            f"{r['path']:<9} {r['noop_rps']:>11.0f} {r['decide_rps']:>12.0f} {r['ratio']:>6.2f} "
            f"{r['decide_p50_ms']:>7.1f} {r['decide_p99_ms']:>7.1f} {r['batch_decisions_per_s']:>12.0f} "
            f"{r['batch_p99_ms']:>9.1f} {r['decide_errors'] + r['batch_errors']:>6}"
        )
    if len(results) == 2:
        fast, slow = results
        print(
            f"\nHAProxy vs default proxy: decisions x{fast['decide_rps'] / slow['decide_rps']:.1f}, "
            f"batch decisions x{fast['batch_decisions_per_s'] / slow['batch_decisions_per_s']:.1f}"
        )
    print(f"\nCPU in cores ({os.cpu_count()} on this machine), mean over each kind of run:")
    for r in results:
        for what in ("noop", "decide", "batch"):
            print(f"{r['path']:<9} {what:<7} {cpu.describe(r['cpu_' + what])}")
    for r in results:
        print(
            f"{r['path']}: {r['decisions_logged']} decisions logged to Redis during the measured runs"
        )
    plot(results, args.plot)
    print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
