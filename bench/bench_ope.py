"""Off-policy estimators at scale: IPS + SNIPS + DM + DR with intervals on 1,000,000 × 20.

    python bench/bench_ope.py [--rows 1000000] [--actions 20] [--boot 200] [--repeat 3]

Prints the wall time (best of --repeat, one core: BLAS threads pinned to 1) of the four
estimators together, with each interval kind, excluding the reward model; then, separately,
the cross-fitted reward model's fit on dense contexts and the featurization rate of hashed
features (the per-row cost of a DSJson log's reward model).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from banditrec.decision.features import FeatureSet  # noqa: E402
from banditrec.replay import LoggedBandit, OPEData, cross_fit, evaluate  # noqa: E402
from banditrec.replay.hashed import hashed_design  # noqa: E402


def softmax(scores: np.ndarray) -> np.ndarray:
    e = np.exp(scores - scores.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def synthetic(n: int, k: int, d: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    context = rng.normal(size=(n, d)).astype(np.float64)
    theta = rng.normal(scale=0.5, size=(k, d))
    q = 1.0 / (1.0 + np.exp(-(context @ theta.T - 1.0)))
    pi_b = 0.9 * softmax(rng.normal(size=(n, k))) + 0.1 / k
    cdf = pi_b.cumsum(axis=1)
    action = np.minimum((rng.random((n, 1)) > cdf).sum(axis=1), k - 1)
    rows = np.arange(n)
    reward = (rng.random(n) < q[rows, action]).astype(np.float64)
    pi_e = softmax(3.0 * q)
    q_hat = np.clip(q + rng.normal(scale=0.05, size=q.shape), 0.0, 1.0)
    return {
        "context": context,
        "q": q,
        "pi_b": pi_b,
        "action": action,
        "reward": reward,
        "pscore": pi_b[rows, action],
        "pi_e": pi_e,
        "q_hat": q_hat,
    }


def best_of(repeat: int, fn) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--actions", type=int, default=20)
    parser.add_argument("--boot", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n, k = args.rows, args.actions
    arrays = synthetic(n, k, d=10)
    truth = float(np.einsum("ij,ij->i", arrays["pi_e"], arrays["q"]).mean())
    print(f"OPE benchmark: {n:,} events × {k} actions, one core; true value {truth:.4f}")

    methods = ("ips", "snips", "dm", "dr")
    for interval, extra in (
        ("normal", {}),
        ("bootstrap", {"n_boot": args.boot}),
        ("bernstein", {}),
    ):

        def run(interval=interval, extra=extra):
            data = OPEData(
                reward=arrays["reward"],
                action=arrays["action"],
                pscore=arrays["pscore"],
                pi_e=arrays["pi_e"],
                q_hat=arrays["q_hat"],
            )
            return evaluate(data, methods, interval=interval, rng=0, **extra)

        seconds, result = best_of(args.repeat, run)
        label = f"{interval} (B={args.boot})" if interval == "bootstrap" else interval
        print(f"\nIPS+SNIPS+DM+DR, {label:17s}: {seconds:6.3f} s  (input validation included)")
        for name, e in result.items():
            print(
                f"  {name:6s} {e.value:.4f}  stderr {e.stderr:.5f}  [{e.ci_low:.4f}, {e.ci_high:.4f}]"
            )

    log = LoggedBandit(
        action=arrays["action"],
        reward=arrays["reward"],
        pscore=arrays["pscore"],
        pi_b=arrays["pi_b"],
        n_offered=np.full(n, k),
        event_id=[""] * n,
        context=arrays["context"],
    )
    start = time.perf_counter()
    fit = cross_fit(log, kind="ridge", n_folds=3)
    seconds = time.perf_counter() - start
    err = float(np.abs(fit.q_hat - arrays["q"]).mean())
    print(
        f"\nreward model (cross-fitted ridge per action, 3 folds, d=10): {seconds:.2f} s; mean |q̂ − q| {err:.4f}"
    )

    sample = 5_000
    rng = np.random.default_rng(1)

    def features(i: int) -> FeatureSet:
        user = {f"f{j}": float(v) for j, v in enumerate(rng.normal(size=8))}
        user["country"] = f"c{i % 30}"
        actions = [
            (f"item{a}", {"item": {"topic": f"t{a % 7}", "quality": a / k}}) for a in range(k)
        ]
        return FeatureSet.build({"user": user}, actions)

    small = log.take(np.arange(sample))
    small.features = features
    start = time.perf_counter()
    hashed_design(small, 64)
    per_row = (time.perf_counter() - start) / sample
    print(
        f"hashed features (dim 64, {k} actions, 9 context features, all rows distinct): "
        f"{per_row * 1e6:.0f} µs/event → {per_row * n:.0f} s for {n:,} events"
    )


if __name__ == "__main__":
    main()
