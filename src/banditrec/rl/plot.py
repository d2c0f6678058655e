"""Figures: the learning curve of a training run, the comparison of policies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def plot_learning_curve(
    history: Sequence[Mapping[str, Any]],
    path: Path,
    *,
    title: str = "",
    baselines: Mapping[str, float] | None = None,
) -> Path:
    """Episode return (as sampled while training) and true value (evaluated) by env steps."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    steps = [h["env_steps"] for h in history]
    returns = [h["episode_return_mean"] for h in history]
    ax.plot(
        steps,
        [r if r is not None else float("nan") for r in returns],
        label="episode return while training (mean of last 100)",
        color="tab:blue",
        alpha=0.6,
    )
    evaluated = [
        (h["env_steps"], h["true_value"]) for h in history if h.get("true_value") is not None
    ]
    if evaluated:
        xs, ys = zip(*evaluated, strict=True)
        ax.plot(xs, ys, "o-", label="true value of the policy (Monte Carlo)", color="tab:red")
    for (name, value), style in zip((baselines or {}).items(), ("--", ":", "-."), strict=False):
        ax.axhline(value, linestyle=style, color="gray", label=f"{name}: {value:.3f}")
    ax.set_xlabel("env steps")
    ax.set_ylabel("return per episode")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_comparison(rows: Sequence[Mapping[str, Any]], path: Path, *, title: str = "") -> Path:
    """Per policy: the Monte Carlo truth (bar with its interval) and each OPE estimate (points
    with intervals) from the behaviour policy's log."""
    fig, ax = plt.subplots(figsize=(9, 4.8))
    names = [r["policy"] for r in rows]
    xs = range(len(rows))
    truth = [r["true_value"] for r in rows]
    err = [
        [r["true_value"] - r["true_low"] for r in rows],
        [r["true_high"] - r["true_value"] for r in rows],
    ]
    ax.bar(
        xs,
        truth,
        yerr=err,
        color="lightgray",
        edgecolor="black",
        capsize=4,
        label="Monte Carlo truth",
    )
    order = ["pdis", "wpdis", "dr", "wdr", "fqe"]
    methods = sorted(
        {m for r in rows for m in r.get("ope", {})},
        key=lambda m: (m not in order, order.index(m) if m in order else 0, m),
    )
    top = 2.0 * max(max(r["true_high"] for r in rows), 0.0) or 1.0  # OPE far off is cut, labelled
    width = 0.6 / max(len(methods), 1)
    for k, method in enumerate(methods):
        offset = -0.3 + width * (k + 0.5)
        pts = [
            (x + offset, r["ope"][method])
            for x, r in zip(xs, rows, strict=True)
            if method in r.get("ope", {})
        ]
        if not pts:
            continue
        px = [p[0] for p in pts]
        py = [p[1]["value"] for p in pts]
        # a percentile interval need not contain its point estimate: clip, draw it whole
        lo = [max(p[1]["value"] - p[1]["ci_low"], 0.0) for p in pts]
        hi = [max(p[1]["ci_high"] - p[1]["value"], 0.0) for p in pts]
        bars = ax.errorbar(px, py, yerr=[lo, hi], fmt="o", capsize=3, label=method.upper())
        for x, y in zip(px, py, strict=True):
            if y > top:
                color = bars.lines[0].get_color()
                ax.annotate(f"{y:.3g}", (x, top), ha="center", va="top", fontsize=7, color=color)
    low = min(0.0, min(r["true_low"] for r in rows))
    ax.set_ylim(low, top)
    ax.set_xticks(list(xs), names, rotation=10)
    ax.set_ylabel("expected return per journey")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
