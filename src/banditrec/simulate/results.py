"""What a simulated run leaves: one policy's per-step record, several side by side.

The last step of the simulator's decide → log → join → learn loop (simulate/harness.py):
`SimulationResult` holds each step's realized and expected reward, the served pmf's value,
the oracle's and uniform's, with the summary figures (regret, its growth exponent, share of
the oracle); `Comparison` holds several runs on the same env and seed, as a table or a plot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tabulate import tabulate

from ..decision.engine import DecisionEngine
from .specs import PolicySpec


@dataclass(eq=False)
class SimulationResult:
    """One policy's run: per-step arrays over the `steps` decisions, in order."""

    name: str
    env_id: str
    seed: int
    spec: PolicySpec
    rewards: np.ndarray  # realized reward
    expected: np.ndarray  # q(x_t, a_t): expected reward of the action taken
    policy_value: np.ndarray  # Σ_a π(a|x_t) q(x_t, a): expected reward of the served pmf
    oracle: np.ndarray  # max_a q(x_t, a)
    uniform: np.ndarray  # mean_a q(x_t, a)
    chosen: np.ndarray
    probability: np.ndarray
    seconds: float
    log_path: Path | None = None
    engine: DecisionEngine | None = field(default=None, repr=False)

    @property
    def steps(self) -> int:
        return len(self.rewards)

    @property
    def regret(self) -> np.ndarray:
        """Cumulative (pseudo-)regret against the oracle: Σ max_a q − q(a_t)."""
        return np.cumsum(self.oracle - self.expected)

    @property
    def uniform_regret(self) -> np.ndarray:
        return np.cumsum(self.oracle - self.uniform)

    @property
    def cumulative_reward(self) -> np.ndarray:
        return np.cumsum(self.rewards)

    def tail(self, fraction: float = 0.1) -> slice:
        return slice(self.steps - max(1, round(self.steps * fraction)), self.steps)

    def regret_exponent(self) -> float:
        """Slope α of log R(t) against log t over the last 90% of the run (R ∝ t^α; < 1 is sublinear)."""
        r = self.regret
        t = np.arange(1, self.steps + 1)
        keep = (t >= max(2, self.steps // 10)) & (r > 0)
        if keep.sum() < 2:
            return float("nan")
        return float(np.polyfit(np.log(t[keep]), np.log(r[keep]), 1)[0])

    def summary(self, tail_fraction: float = 0.1) -> dict[str, Any]:
        tail = self.tail(tail_fraction)
        oracle_tail = float(self.oracle[tail].mean())
        return {
            "name": self.name,
            "env": self.env_id,
            "seed": self.seed,
            "steps": self.steps,
            "cumulative_reward": float(self.rewards.sum()),
            "mean_reward": float(self.rewards.mean()),
            "mean_expected_reward": float(self.expected.mean()),
            "oracle_mean": float(self.oracle.mean()),
            "uniform_mean": float(self.uniform.mean()),
            "regret": float(self.regret[-1]),
            "uniform_regret": float(self.uniform_regret[-1]),
            "regret_exponent": self.regret_exponent(),
            "tail_fraction": tail_fraction,
            "tail_expected_reward": float(self.expected[tail].mean()),
            "tail_policy_value": float(self.policy_value[tail].mean()),
            "tail_oracle": oracle_tail,
            "tail_uniform": float(self.uniform[tail].mean()),
            "tail_share_of_oracle": float(self.policy_value[tail].mean() / oracle_tail)
            if oracle_tail
            else float("nan"),
            "seconds": self.seconds,
            "steps_per_second": self.steps / self.seconds if self.seconds > 0 else float("inf"),
            "policy": self.spec.app.policy.model_dump(mode="json", by_alias=True),
            "log": str(self.log_path) if self.log_path else None,
        }


@dataclass(eq=False)
class Comparison:
    """Several policies run on the same env and seed (the same users and candidates)."""

    env_id: str
    seed: int
    results: list[SimulationResult]
    plot_path: Path | None = None

    def __getitem__(self, name: str) -> SimulationResult:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(f"no run named {name!r}; runs: {[r.name for r in self.results]}")

    def summary(self, tail_fraction: float = 0.1) -> list[dict[str, Any]]:
        return [r.summary(tail_fraction) for r in self.results]

    def table(self, tail_fraction: float = 0.1) -> str:
        """A plain-text table of the headline figures, oracle and uniform included."""
        rows = [
            (
                s["name"],
                f"{s['mean_reward']:.4f}",
                f"{s['regret']:.1f}",
                f"{s['tail_policy_value']:.4f}",
                f"{100 * s['tail_share_of_oracle']:.1f}%",
                f"{s['regret_exponent']:.2f}",
                f"{s['steps_per_second']:.0f}",
            )
            for s in self.summary(tail_fraction)
        ]
        first = self.results[0]
        tail = first.tail(tail_fraction)
        for label, per_step in (("[oracle]", first.oracle), ("[uniform]", first.uniform)):
            regret = float((first.oracle - per_step).sum())
            share = per_step[tail].mean() / first.oracle[tail].mean()
            rows.append(
                (
                    label,
                    f"{per_step.mean():.4f}",
                    f"{regret:.1f}",
                    f"{per_step[tail].mean():.4f}",
                    f"{100 * share:.1f}%",
                    "",
                    "",
                )
            )
        pct = f"{round(100 * tail_fraction)}%"
        header = (
            "policy",
            "mean reward",
            "regret",
            f"value, last {pct}",
            "of oracle",
            "regret exp.",
            "steps/s",
        )
        align = ("left", *["right"] * (len(header) - 1))
        return tabulate(rows, header, disable_numparse=True, colalign=align)

    def plot(self, path: str | Path | None = None, *, window: int | None = None):  # -> Figure
        from .plot import plot_results

        return plot_results(self.results, path, window=window)
