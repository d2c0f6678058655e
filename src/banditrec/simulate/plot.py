"""Reward and regret curves of several runs side by side, as one PNG.

Drawn on a bare `Figure` with the Agg canvas (no pyplot state, no global backend switch),
so it works the same in a script, a test and a notebook (where the returned figure
displays inline).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from .results import SimulationResult


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over up to `window` steps (shorter at the start)."""
    c = np.cumsum(np.insert(values, 0, 0.0))
    t = np.arange(1, len(values) + 1)
    lo = np.maximum(t - window, 0)
    return (c[t] - c[lo]) / (t - lo)


def plot_results(
    results: Sequence[SimulationResult],
    path: str | Path | None = None,
    *,
    window: int | None = None,
) -> Figure:
    """Left: expected reward per step (moving average) of each run, the oracle and uniform.
    Right: cumulative regret against the oracle, uniform's for reference. Saved to `path`."""
    if not results:
        raise ValueError("nothing to plot: no results")
    steps = max(r.steps for r in results)
    window = window or max(1, steps // 50)
    fig = Figure(figsize=(12, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    reward_ax, regret_ax = fig.subplots(1, 2)
    start = window - 1 if steps >= 2 * window else 0  # full windows only, when there are enough

    def smooth(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.arange(start + 1, len(values) + 1), moving_average(values, window)[start:]

    reference = results[0]
    reward_ax.plot(*smooth(reference.oracle), "k--", lw=1.2, label="[oracle]")
    reward_ax.plot(*smooth(reference.uniform), ":", color="grey", lw=1.2, label="[uniform]")
    t = np.arange(1, reference.steps + 1)
    regret_ax.plot(t, reference.uniform_regret, ":", color="grey", lw=1.2, label="[uniform]")
    for r in results:
        (line,) = reward_ax.plot(*smooth(r.policy_value), lw=1.5, label=r.name)
        regret_ax.plot(
            np.arange(1, r.steps + 1), r.regret, lw=1.5, color=line.get_color(), label=r.name
        )
    reward_ax.set(
        title=f"Expected reward per step (moving average of {window})",
        xlabel="step",
        ylabel="expected reward",
    )
    regret_ax.set(title="Cumulative regret vs the oracle", xlabel="step", ylabel="regret")
    for ax in (reward_ax, regret_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(f"{reference.env_id}, seed {reference.seed}")
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
    return fig
