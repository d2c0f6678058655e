"""Simulator throughput: batched context sampling, and the one-step Gymnasium path.

    python bench/bench_envs.py [--n 100000] [--repeats 5]

Figure (issue: simulators): batched Content-v0 sampling ≥ 100,000 contexts/s with 20
candidate actions (`env.unwrapped.sample_batch(n, rng)`: contexts, candidates and the
expected reward of every action). Rows are turned into `FeatureSet`s lazily; that rate
and the step rate of every env are printed for reference.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one core, as the figures are stated
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import time

import gymnasium as gym
import numpy as np

from banditrec.envs import ENV_IDS

BANDITS = [
    "banditrec/Content-v0",
    "banditrec/Channel-v0",
    "banditrec/SendTime-v0",
    "banditrec/Digits-v0",
]


def batch_rate(env_id: str, n: int, repeats: int) -> tuple[float, int]:
    env = gym.make(env_id).unwrapped
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    env.sample_batch(1000, rng)  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        batch = env.sample_batch(n, rng)
        times.append(time.perf_counter() - t)
    return n / float(np.median(times)), batch.n_actions


def feature_set_rate(env_id: str, rows: int) -> float:
    env = gym.make(env_id).unwrapped
    env.reset(seed=0)
    batch = env.sample_batch(rows, np.random.default_rng(0))
    t = time.perf_counter()
    for i in range(rows):
        batch.feature_set(i)
    return rows / (time.perf_counter() - t)


def step_rate(env_id: str, steps: int) -> float:
    env = gym.make(env_id)
    env.reset(seed=0)
    n = env.action_space.n
    t = time.perf_counter()
    for i in range(steps):
        _, _, terminated, truncated, _ = env.step(i % n)
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000, help="contexts per batch")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=3000, help="single steps per env")
    args = ap.parse_args()

    print(f"batched sampling: sample_batch({args.n:,}), median of {args.repeats}")
    for env_id in BANDITS:
        rate, k = batch_rate(env_id, args.n, args.repeats)
        mark = ""
        if env_id == "banditrec/Content-v0":
            mark = (
                "  (target ≥ 100,000 with 20 actions: "
                + ("PASS" if rate >= 100_000 and k == 20 else "FAIL")
                + ")"
            )
        print(f"  {env_id:<32} K={k:<3} {rate:>12,.0f} contexts/s{mark}")
    print("\nbatch row → FeatureSet (lazy, per row)")
    for env_id in BANDITS:
        print(f"  {env_id:<32} {feature_set_rate(env_id, 5000):>12,.0f} rows/s")
    print(f"\nGymnasium step (one context at a time, info built), {args.steps} steps")
    for env_id in ENV_IDS:
        if env_id.split("/")[1] in ("Wine-v0", "Iris-v0", "BreastCancer-v0", "Supervised-v0"):
            continue
        print(f"  {env_id:<32} {step_rate(env_id, args.steps):>12,.0f} steps/s")


if __name__ == "__main__":
    main()
