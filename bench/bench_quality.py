"""Learning quality of banditrec's VW defaults next to VW's own explorers, on the same streams.

    python bench/bench_quality.py [--shuffles 5] [--problems digits,wine,...] [--plot quality.png]

The protocol of the Contextual Bandit Bake-off (Bietti, Agarwal, Langford, JMLR 2021):
a labelled dataset becomes a contextual bandit with one action per class and reward 1 for
the right class; each run is one online pass over a shuffle of the data, scored by its
progressive 0/1 loss (the mean loss of the actions actually drawn, exploration included).
Problems: the four datasets scikit-learn ships, synthetic classification problems
(`make_classification`: classes, features, informative share and label noise varied) and
the Content and Channel simulators (scored by mean regret per step: the oracle's expected
reward minus the drawn action's).

Each shuffle is one env seed, so every learner sees the same stream. The anchor is VW
itself, driven directly through vowpal_wabbit_next with VW's text format as a VW user
writes it: `shared |x ...` then one `|label ...` line per action, `-q` crossing each
context namespace letter with each action namespace letter, cost = (high − reward) /
(high − low) (0/1 for the datasets, as in the Bake-off); one ε-greedy row keeps cost =
−reward to show what the cost mapping does. banditrec's rows run through the simulation
harness (the served pmf, the app's floor, `DecisionEngine.learn`). Prints mean ± standard
error per problem and writes a bar chart.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import vowpal_wabbit_next as vw
from tabulate import tabulate
from tqdm.auto import tqdm

from banditrec.envs import SUGGESTED_POLICIES
from banditrec.envs.supervised import SupervisedBanditEnv
from banditrec.simulate.harness import simulate

warnings.filterwarnings("ignore", category=UserWarning)  # gymnasium's env checker

SKLEARN = ("digits", "wine", "iris", "breast_cancer")
# (classes, features, informative, label noise): few/many classes, narrow/wide, clean/noisy
SYNTHETIC = {
    "syn-k3-d10": (3, 10, 5, 0.0),
    "syn-k5-d40-noisy": (5, 40, 10, 0.1),
    "syn-k10-d20": (10, 20, 12, 0.02),
    "syn-k20-d30-noisy": (20, 30, 20, 0.05),
}
SIMULATORS = {"content": "banditrec/Content-v0", "channel": "banditrec/Channel-v0"}
SIM_STEPS = 2000

# The anchor: VW's explorers as a VW user runs them.
VW_ANCHORS: dict[str, list[str]] = {
    "VW ε-greedy 0.05": ["--epsilon", "0.05"],
    "VW squarecb": ["--squarecb"],
    "VW regcbopt": ["--regcbopt"],
    "VW cover 3": ["--cover", "3"],
    "VW bag 5": ["--bag", "5"],
}
VW_NEGATIVE = "VW ε-greedy 0.05 cost −reward"

# banditrec app configs: the default first, then candidates for it.
CANDIDATES: dict[str, dict[str, Any]] = {
    "banditrec default": {},
    "ε-greedy 0.05": {"explorer": {"type": "epsilon", "epsilon": 0.05}},
    "squarecb lr 0.5": {"explorer": {"type": "squarecb"}, "learning_rate": 0.5},
    "squarecb lr 1": {"explorer": {"type": "squarecb"}, "learning_rate": 1.0},
    "squarecb γ 30 lr 0.5": {
        "explorer": {"type": "squarecb", "gamma_scale": 30.0},
        "learning_rate": 0.5,
    },
    "squarecb γ 30 lr 1": {
        "explorer": {"type": "squarecb", "gamma_scale": 30.0},
        "learning_rate": 1.0,
    },
    "regcb optimistic": {"explorer": {"type": "regcb", "optimistic": True}},
    "bag 5": {"explorer": {"type": "bag", "bags": 5}},
    "squarecb cost −reward": {"explorer": {"type": "squarecb"}, "cost": "negative"},
    "squarecb no crosses": {"explorer": {"type": "squarecb"}, "interactions": []},
    "squarecb -q ::": {"explorer": {"type": "squarecb"}, "interactions": ["::"]},
}


@dataclass(frozen=True)
class Problem:
    name: str
    make: Callable[[], gym.Env]
    steps: int | None  # None: one pass over the dataset
    reward_range: tuple[float, float] = (0.0, 1.0)

    @property
    def supervised(self) -> bool:
        return self.steps is None


def problems(names: list[str]) -> list[Problem]:
    from sklearn.datasets import make_classification

    out = []
    for name in names:
        if name in SKLEARN:
            out.append(Problem(name, lambda n=name: SupervisedBanditEnv(n), None))
        elif name in SYNTHETIC:
            k, d, informative, noise = SYNTHETIC[name]
            X, y = make_classification(
                n_samples=2000,
                n_features=d,
                n_informative=informative,
                n_redundant=0,
                n_classes=k,
                n_clusters_per_class=1,
                flip_y=noise,
                random_state=7,
            )
            out.append(Problem(name, lambda X=X, y=y: SupervisedBanditEnv(X=X, y=y), None))
        elif name in SIMULATORS:
            env_id = SIMULATORS[name]
            suggested = SUGGESTED_POLICIES[env_id.split("/")[1]]
            low, high = suggested.get("reward_range", (0.0, 1.0))
            out.append(Problem(name, lambda e=env_id: gym.make(e), SIM_STEPS, (low, high)))
        else:
            choices = [*SKLEARN, *SYNTHETIC, *SIMULATORS]
            raise SystemExit(f"unknown problem {name!r}; choose from {choices}")
    return out


def _steps(problem: Problem, env: gym.Env) -> int:
    return problem.steps or len(env.unwrapped.X)


def _score(problem: Problem, rewards: np.ndarray, regret: np.ndarray) -> float:
    """Progressive 0/1 loss for a dataset, mean regret per step for a simulator."""
    return float(1.0 - rewards.mean()) if problem.supervised else float(regret.mean())


# --- banditrec, through the simulation harness ------------------------------------------


def run_banditrec(problem: Problem, candidate: dict[str, Any], seed: int) -> float:
    env = problem.make()
    policy = {"kind": "vw", **{k: v for k, v in candidate.items() if k != "cost"}}
    low, high = problem.reward_range
    if candidate.get("cost") == "negative":
        # cost = (0 − reward) / (0 − (−1)) = −reward, VW told the costs' true range
        policy["reward_range"] = (-1.0, 0.0)
        policy["extra_args"] = ["--cb_min_cost", str(-high), "--cb_max_cost", str(-low)]
    elif (low, high) != (0.0, 1.0):
        policy["reward_range"] = (low, high)
    app = {"policy": policy, "seed": seed}
    result = simulate(env, app, steps=_steps(problem, env), seed=seed, progress=False)
    return _score(problem, result.rewards, result.oracle - result.expected)


# --- VW itself, text format -------------------------------------------------------------


def _text(namespaces: dict[str, dict[str, Any]]) -> str:
    parts = []
    for ns, feats in namespaces.items():
        items = []
        for name, value in feats.items():
            if isinstance(value, str):
                items.append(f"{name}={value}")
            elif value:
                items.append(f"{name}:{float(value):.6g}")
        parts.append(f"|{ns} " + " ".join(items))
    return " ".join(parts)


def run_vw(problem: Problem, explorer: list[str], seed: int, negative: bool = False) -> float:
    env = problem.make()
    steps = _steps(problem, env)
    _, info = env.reset(seed=seed)
    ctx_letters = sorted({ns[0] for ns in info["context"]})
    act_letters = sorted({ns[0] for a in info["actions"] for ns in a["features"]})
    quad = [arg for c in ctx_letters for a in act_letters for arg in ("-q", c + a)]
    ws = vw.Workspace(["--cb_explore_adf", "--quiet", *explorer, *quad])
    parser = vw.TextFormatParser(ws)
    rng = np.random.default_rng(seed)
    low, high = problem.reward_range
    rewards, regret = np.zeros(steps), np.zeros(steps)
    for t in range(steps):
        lines = ["shared " + _text(info["context"])]
        lines += [_text(a["features"]) for a in info["actions"]]
        pmf = np.zeros(len(info["actions"]))
        for index, prob in ws.predict_one([parser.parse_line(line) for line in lines]):
            pmf[index] = prob
        chosen = int(rng.choice(len(pmf), p=pmf / pmf.sum()))
        q = np.asarray(info["expected_rewards"])
        _, reward, terminated, truncated, info_next = env.step(chosen)
        cost = -float(reward) if negative else (high - float(reward)) / (high - low)
        lines[1 + chosen] = f"0:{cost:.6g}:{pmf[chosen]:.6g} " + lines[1 + chosen]
        ws.learn_one([parser.parse_line(line) for line in lines])
        rewards[t], regret[t] = reward, q.max() - q[chosen]
        if terminated or truncated:
            _, info_next = env.reset()
        info = info_next
    return _score(problem, rewards, regret)


# --- the table and the chart -------------------------------------------------------------


def mean_se(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values)
    return float(a.mean()), float(a.std(ddof=1) / np.sqrt(len(a))) if len(a) > 1 else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shuffles", type=int, default=5)
    ap.add_argument("--problems", default=",".join([*SKLEARN, *SYNTHETIC, *SIMULATORS]))
    ap.add_argument("--candidates", default=",".join(CANDIDATES), help="banditrec rows")
    ap.add_argument("--plot", default="bench_quality.png")
    args = ap.parse_args()
    probs = problems(args.problems.split(","))
    rows: dict[str, Callable[[Problem, int], float]] = {
        name: (lambda p, s, e=explorer: run_vw(p, e, s)) for name, explorer in VW_ANCHORS.items()
    }
    rows[VW_NEGATIVE] = lambda p, s: run_vw(p, VW_ANCHORS["VW ε-greedy 0.05"], s, negative=True)
    for name in args.candidates.split(","):
        rows[name] = lambda p, s, c=CANDIDATES[name]: run_banditrec(p, c, s)
    scores: dict[str, dict[str, list[float]]] = {r: {p.name: [] for p in probs} for r in rows}
    with tqdm(total=len(rows) * len(probs) * args.shuffles, unit="run") as bar:
        for problem in probs:
            for seed in range(args.shuffles):
                for name, run in rows.items():
                    bar.set_description(f"{problem.name} {name}")
                    scores[name][problem.name].append(run(problem, seed))
                    bar.update()
    print_table(scores, probs, args.shuffles)
    plot(scores, probs, args.plot)


def print_table(scores: dict[str, dict[str, list[float]]], probs: list[Problem], n: int) -> None:
    print(f"\nmean ± standard error over {n} shuffles (0/1 loss; simulators: regret per step)")
    rows = [
        [name, *("{:.3f} ± {:.3f}".format(*mean_se(by[p.name])) for p in probs)]
        for name, by in scores.items()
    ]
    print(tabulate(rows, ["", *(p.name for p in probs)], tablefmt="github", disable_numparse=True))
    default = scores.get("banditrec default")
    if default is None:
        return
    for p in probs:
        eps = mean_se(scores["VW ε-greedy 0.05"][p.name])[0]
        best_name = min(VW_ANCHORS, key=lambda r: mean_se(scores[r][p.name])[0])
        best, best_se = mean_se(scores[best_name][p.name])
        mine, se = mean_se(default[p.name])
        print(
            f"{p.name}: default {mine:.3f} vs VW ε 0.05 {eps:.3f} ({'beats' if mine < eps else 'LOSES'}); "
            f"best VW {best_name} {best:.3f}: within one SE: {mine - best <= max(se, best_se)}"
        )


def plot(scores: dict[str, dict[str, list[float]]], probs: list[Problem], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(scores)
    fig, axes = plt.subplots(1, len(probs), figsize=(2.2 * len(probs) + 2, 5), squeeze=False)
    for ax, p in zip(axes[0], probs, strict=True):
        stats = [mean_se(scores[n][p.name]) for n in names]
        colors = ["tab:gray" if n.startswith("VW") else "tab:blue" for n in names]
        if "banditrec default" in names:
            colors[names.index("banditrec default")] = "tab:red"
        ax.barh(range(len(names)), [m for m, _ in stats], xerr=[s for _, s in stats], color=colors)
        ax.set_title(p.name, fontsize=9)
        ax.set_yticks(range(len(names)), names if ax is axes[0][0] else [], fontsize=7)
        ax.invert_yaxis()
    fig.suptitle("progressive 0/1 loss (simulators: regret per step); lower is better")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"plot: {path}")


if __name__ == "__main__":
    main()
