"""Plot of estimated values with their intervals: one row per policy, one marker per method."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from matplotlib import rcParams
from matplotlib.figure import Figure

from .summary import Estimate


def plot_estimates(
    per_policy: Mapping[str, Mapping[str, Estimate]],
    path: Path,
    *,
    baseline: tuple[str, Estimate] | None = None,
    title: str = "Estimated policy value",
) -> Path:
    """Horizontal error bars; the current policy's value as a dashed line."""
    policies = list(per_policy)
    methods = list(dict.fromkeys(m for estimates in per_policy.values() for m in estimates))
    # A bare Figure renders with the Agg canvas and touches no global pyplot state.
    fig = Figure(figsize=(8.0, 1.2 + 0.6 * len(policies) * max(1, len(methods)) ** 0.5))
    ax = fig.subplots()
    step = 0.7 / max(1, len(methods))
    colors = rcParams["axes.prop_cycle"].by_key()["color"]
    for k, method in enumerate(methods):
        ys, xs, lo, hi = [], [], [], []
        for row, policy in enumerate(policies):
            e = per_policy[policy].get(method)
            if e is None:
                continue
            ys.append(row - 0.35 + step * (k + 0.5))
            xs.append(e.value)
            lo.append(e.value - e.ci_low)
            hi.append(e.ci_high - e.value)
        ax.errorbar(
            xs, ys, xerr=[lo, hi], fmt="o", capsize=3, color=colors[k % len(colors)], label=method
        )
    if baseline is not None:
        name, e = baseline
        ax.axvline(
            e.value, color="0.4", linestyle="--", linewidth=1, label=f"{name} ({e.value:.4f})"
        )
    ax.set_yticks(range(len(policies)), policies)
    ax.invert_yaxis()
    ax.set_xlabel("estimated value (mean reward per decision) with interval")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path
