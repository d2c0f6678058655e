"""Slates: in-process decide against a single decision, VW's CCB against its slates reduction,
and slate OPE on a million logged slates; with --http, slate decisions against single
decisions over HTTP instead.

    python bench/bench_slates.py [--n 300] [--ope-slates 1000000]
    python bench/bench_slates.py --http [--duration 10] [--rounds 2] [--connections 16]

Figures (issue: ranked lists): a slate of 10 from 100 candidates with 20 features each
decided in-process in ≤ 3× the time of a single decision over the same 100 candidates
(same run, same trained models); slate OPE on 1M logged slates of 10 in ≤ 3 s for IPS + DR
with normal intervals. The VW comparison times VW alone (parse + predict of prepared JSON)
for one cb_explore_adf decision, one ccb_explore_adf slate and one `slates` slate.

--http: the service as `banditrec serve` runs it (its own Ray with 2 CPUs, an embedded
Redis, the HAProxy ingress, every decision logged before the answer) serving two `vw`
apps, one answering single decisions and one slates of 10, each request offering the same
100 candidates × 20 features; rounds alternate between the two (bench_serve.py's load
generator: wrk when installed) and the figures are decisions/s (a slate is one decision),
p50 and p99 latency of each, and the slate-to-single throughput ratio.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import orjson
import vowpal_wabbit_next as vw

sys.path.insert(0, str(Path(__file__).parent))
from _timing import per_call, us
from banditrec import DecisionEngine, DecisionRequest
from banditrec.decision.record import set_reward
from banditrec.replay.slates import SlateLog, estimate_slates
from banditrec.slates import SlateRequest

N_CANDIDATES, POSITIONS, FEATURES = 100, 10, 20


def candidates(rng: np.random.Generator) -> list[dict]:
    return [
        {
            "id": f"item-{a}",
            "features": {"item": {f"f{j}": float(rng.random()) for j in range(FEATURES)}},
        }
        for a in range(N_CANDIDATES)
    ]


def context(rng: np.random.Generator) -> dict:
    return {"user": {f"u{j}": float(rng.random()) for j in range(4)}}


def reward(action_id: str) -> float:
    return 1.0 if int(action_id.split("-")[1]) % 7 == 0 else 0.0


def trained(kind: str, rng: np.random.Generator, actions: list[dict], n: int) -> DecisionEngine:
    policy = {"kind": kind, "explorer": {"type": "epsilon", "epsilon": 0.05}}
    engine = DecisionEngine.from_config({"name": "bench", "policy": policy})
    for i in range(n):
        request = SlateRequest(
            event_id=f"t{i}", context=context(rng), actions=actions, positions=POSITIONS
        )
        for record in engine.decide_slate_logged(request)[1]:
            chosen = record["_banditrec"]["action_ids"][record["_labelIndex"]]
            engine.learn(set_reward(record, reward(chosen)))
    return engine


def decide_ratio(n: int) -> None:
    rng = np.random.default_rng(0)
    actions = candidates(rng)
    single = trained("vw", rng, actions, 100)
    slate = trained("vw_ccb", rng, actions, 100)
    ctx = [context(rng) for _ in range(n)]
    singles = [
        DecisionRequest(event_id=f"s{i}", context=c, actions=actions) for i, c in enumerate(ctx)
    ]
    slates = [
        SlateRequest(event_id=f"s{i}", context=c, actions=actions, positions=POSITIONS)
        for i, c in enumerate(ctx)
    ]
    by_position = DecisionEngine(
        slate.config.model_copy(update={"policy": single.config.policy}), {None: single.policy}
    )

    # Interleaved, so the three see the same machine load; timed in wall clock and in the
    # thread's CPU time (which a loaded machine's waits do not inflate).
    kinds = {
        "single decision (vw)": lambda i: single.decide(singles[i]),
        f"slate of {POSITIONS} (vw, by position)": lambda i: by_position.decide_slate(slates[i]),
        f"slate of {POSITIONS} (vw_ccb)": lambda i: slate.decide_slate(slates[i]),
    }
    wall = {name: np.empty(n) for name in kinds}
    cpu = {name: np.empty(n) for name in kinds}
    for i in range(n + 20):
        for name, fn in kinds.items():
            t, c = time.perf_counter(), time.thread_time()
            fn(i % n)
            if i >= 20:
                wall[name][i - 20] = time.perf_counter() - t
                cpu[name][i - 20] = time.thread_time() - c
    base_wall, base_cpu = wall["single decision (vw)"], cpu["single decision (vw)"]
    print(f"decide, {N_CANDIDATES} candidates × {FEATURES} features, interleaved:")
    print(f"  {'':32s} {'CPU mean µs':>12s} {'ratio':>6s} {'wall p50 µs':>12s} {'ratio':>6s}")
    for name in kinds:
        c, w = cpu[name], wall[name]
        print(
            f"  {name:32s} {c.mean() * 1e6:12.0f} {c.mean() / base_cpu.mean():5.2f}x "
            f"{us(w):12.0f} {us(w) / us(base_wall):5.2f}x"
        )


def vw_reductions(n: int) -> None:
    rng = np.random.default_rng(1)
    actions = [a["features"] for a in candidates(rng)]
    ctx = context(rng)
    base = ["--quiet", "--epsilon", "0.05", "-b", "18"]
    texts = {
        "cb_explore_adf, 1 decision": (["--cb_explore_adf"], {**ctx, "_multi": actions}),
        f"ccb_explore_adf, slate of {POSITIONS}": (
            ["--ccb_explore_adf"],
            {**ctx, "_multi": actions, "_slots": [{} for _ in range(POSITIONS)]},
        ),
        f"slates, slate of {POSITIONS}": (
            ["--slates"],
            {
                **ctx,
                "_multi": [{**a, "_slot_id": s} for s in range(POSITIONS) for a in actions],
                "_slots": [{} for _ in range(POSITIONS)],
            },
        ),
    }
    print("VW alone, parse + predict of prepared JSON (mean µs):")
    for name, (args, example) in texts.items():
        ws = vw.Workspace(args + base)
        parser = vw.JsonFormatParser(ws)
        text = orjson.dumps(example)
        t = per_call(
            lambda ws=ws, parser=parser, text=text: ws.predict_one(parser.parse_json(text)),
            max(n // 5, 20),
            warmup=5,
        )
        print(f"  {name:34s} {t.mean() * 1e6:9.0f}")


def ope(n_slates: int) -> None:
    rng = np.random.default_rng(2)
    shape = (n_slates, POSITIONS)
    pscore = rng.uniform(0.05, 1.0, shape)
    target = rng.uniform(0.05, 1.0, shape)
    reward_ = (rng.random(shape) < 0.1).astype(np.float64)
    q_hat = np.full(shape, 0.1)
    v_hat = np.full(shape, 0.1)
    log = SlateLog(pscore, target, reward_, q_hat, v_hat)
    started, cpu = time.perf_counter(), time.process_time()
    ips = estimate_slates(log, "cascade_ips")
    dr = estimate_slates(log, "cascade_dr")
    took, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(
        f"slate OPE, {n_slates:,} slates of {POSITIONS}: cascade IPS + cascade DR with normal "
        f"intervals in {took:.2f} s wall, {cpu:.2f} s CPU (IPS {ips.estimate.value:.3f}, DR "
        f"{dr.estimate.value:.3f}); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )


def http(args: argparse.Namespace) -> None:
    from _service import bench_options
    from banditrec.serving.runner import LocalService
    from banditrec.serving.settings import ServiceSettings
    from bench_serve import load

    policy = {"kind": "vw", "explorer": {"type": "epsilon", "epsilon": 0.05}}
    apps = [{"name": n, "policy": policy, "reward": {"wait_seconds": 30}} for n in ("one", "slate")]
    options = bench_options(ServiceSettings.model_validate({"apps": apps}), "bench-slates-", 1)
    rng = np.random.default_rng(3)
    body = {"context": context(rng), "actions": candidates(rng)}
    kinds = {
        "single decision": ("one/decisions", orjson.dumps(body)),
        f"slate of {POSITIONS}": ("slate/slates", orjson.dumps(body | {"positions": POSITIONS})),
    }
    runs: dict[str, list[dict]] = {name: [] for name in kinds}
    headers = {"Content-Type": "application/json"}
    load_average = [os.getloadavg()[0]]
    with LocalService(options) as service:
        urls = {name: f"{service.url}/v1/apps/{route}" for name, (route, _) in kinds.items()}
        for name, (_, payload) in kinds.items():  # warm-up: connections, models, caches
            load(urls[name], payload, headers, args.connections, 2, args.loader)
        for _ in range(args.rounds):  # alternating, so drift in the machine's load hits both
            for name, (_, payload) in kinds.items():
                result = load(
                    urls[name], payload, headers, args.connections, args.duration, args.loader
                )
                runs[name].append(result)
                load_average.append(os.getloadavg()[0])
    print(
        f"HTTP (HAProxy ingress, 1 replica, logged to Redis), {N_CANDIDATES} candidates × "
        f"{FEATURES} features, {args.connections} connections, {args.rounds} alternating rounds "
        f"of {args.duration:g} s, loader {runs['single decision'][0]['loader']}; load average "
        f"{min(load_average):.1f}–{max(load_average):.1f} on {os.cpu_count()} cores"
    )
    print(f"  {'':18s} {'decisions/s':>11s} {'p50 ms':>7s} {'p99 ms':>7s} {'errors':>6s}")
    mean = {name: float(np.mean([r["rps"] for r in rs])) for name, rs in runs.items()}
    for name, rs in runs.items():
        print(
            f"  {name:18s} {mean[name]:11.0f} {np.mean([r['p50_ms'] for r in rs]):7.1f} "
            f"{np.mean([r['p99_ms'] for r in rs]):7.1f} {sum(r['errors'] for r in rs):6d}"
        )
    single, slate = mean.values()
    print(
        f"  slate / single throughput: {slate / single:.2f} (a slate costs {single / slate:.2f}×)"
    )
    logged = logged_bytes(DecisionEngine.from_config({"name": "one", "policy": policy}), body)
    print(
        f"  logged per request (DSJson records before the answer): single decision "
        f"{logged[0] / 1e3:,.0f} kB in 1 record, slate {logged[1] / 1e3:,.0f} kB in {POSITIONS}"
    )


def logged_bytes(engine: DecisionEngine, body: dict) -> tuple[int, int]:
    """Bytes of the records a single decision and a slate log (as the service serializes)."""
    single = engine.decide_logged(DecisionRequest(event_id="b", **body), serialized_features=True)
    slate = engine.decide_slate_logged(
        SlateRequest(event_id="b", positions=POSITIONS, **body), serialized_features=True
    )
    one, many = (sum(len(orjson.dumps(r)) for r in records) for _, records in (single, slate))
    return one, many


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--ope-slates", type=int, default=1_000_000)
    ap.add_argument("--http", action="store_true", help="slates vs single decisions over HTTP")
    ap.add_argument("--duration", type=float, default=10.0, help="--http: seconds per run")
    ap.add_argument("--rounds", type=int, default=2, help="--http: alternating rounds")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--loader", choices=["auto", "wrk", "python"], default="auto")
    args = ap.parse_args()
    if args.http:
        http(args)
        return
    vw_reductions(args.n)
    decide_ratio(args.n)
    ope(args.ope_slates)


if __name__ == "__main__":
    main()
