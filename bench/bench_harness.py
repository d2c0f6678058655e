"""Harness overhead: `simulate()` against a hand-written loop calling the policy directly.

    python bench/bench_harness.py [--steps 3000] [--repeats 5]

Figure (issue: simulation harness): harness overhead ≤ 20% over calling the policy
directly on the same stream. Both loops run the same env (Content-v0, 20 actions), seed
and VW policy, and make the same draws (the direct loop draws with the same per-event
seeds), so they serve the same actions (checked); the direct loop only lacks what the
harness adds: the engine's served pmf (mode, floor), the result arrays, the progress bar
and, in the second figure, the DSJson log. The two are run alternately in one process and
the median ratio of the paired runs is reported, so load on the machine cancels out.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one core, as the figures are stated
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

from banditrec.config import AppConfig
from banditrec.decision.features import Interaction
from banditrec.decision.sampling import draw, event_seed
from banditrec.envs import suggested_policy, to_feature_set
from banditrec.policies import make_policy
from banditrec.simulate import simulate

ENV = "banditrec/Content-v0"


def direct(app: AppConfig, steps: int, seed: int) -> tuple[float, np.ndarray]:
    """The minimal loop a user would write: features, pmf, draw, step, learn."""
    env = gym.make(ENV)
    policy = make_policy(app.policy)
    chosen = np.zeros(steps, dtype=np.int64)
    start = time.perf_counter()
    _, info = env.reset(seed=seed)
    for t in range(steps):
        x = to_feature_set(info)
        s = event_seed(app.seed, f"sim-{seed}-{t}")
        p = policy.pmf(x, s)
        a = draw(p, s)
        _, reward, _, _, info = env.step(a)
        policy.learn(Interaction(x, a, float(p[a]), float(reward)))
        chosen[t] = a
    return time.perf_counter() - start, chosen


def harness(app: AppConfig, steps: int, seed: int, log: Path | None) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    result = simulate(ENV, app, steps=steps, seed=seed, log_path=log, progress=True)
    return time.perf_counter() - start, result.chosen


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    # The floor is 0 so that the served pmf is the policy's own and both loops draw the same actions.
    app = AppConfig(policy=suggested_policy(ENV), min_probability=0.0)
    log = Path(tempfile.mkdtemp()) / "bench.dsjson"
    loops = {
        "direct": lambda: direct(app, args.steps, seed=1),
        "harness": lambda: harness(app, args.steps, seed=1, log=None),
        "harness + DSJson log": lambda: harness(app, args.steps, seed=1, log=log),
    }
    rows: dict[str, list[float]] = {name: [] for name in loops}
    names = list(loops)
    for rep in range(args.repeats):
        served = {}
        for name in names[rep % 3 :] + names[: rep % 3]:  # rotate: no loop always runs first
            seconds, served[name] = loops[name]()
            rows[name].append(seconds)
        if not all(np.array_equal(served["direct"], chosen) for chosen in served.values()):
            raise SystemExit("the loops served different actions: not the same stream")
    direct_times = np.asarray(rows["direct"])
    print(
        f"{ENV}, policy {suggested_policy(ENV)}, {args.steps} steps × {args.repeats} (same actions served)"
    )
    print(f"{'loop':<22} {'median s':>9} {'µs/step':>9} {'vs direct':>10}")
    for name, times in rows.items():
        t = np.asarray(times)
        ratio = float(np.median(t / direct_times))
        print(
            f"{name:<22} {np.median(t):>9.3f} {1e6 * np.median(t) / args.steps:>9.1f} {ratio:>9.3f}x"
        )
    overhead = float(np.median(np.asarray(rows["harness"]) / direct_times)) - 1.0
    verdict = "PASS" if overhead <= 0.20 else "FAIL"
    print(f"\nharness overhead: {100 * overhead:+.1f}% (target ≤ 20%: {verdict})")


if __name__ == "__main__":
    main()
