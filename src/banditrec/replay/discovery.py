"""Optimization discovery: which learning settings should this app run, judged on its own log?

A search space of Vowpal Wabbit settings — interaction sets, explorers, learning rates, cb
types — is explored by counterfactual training (counterfactual.py): every setting visited is
re-run over the log in time order, learning as it goes, and its online value estimated with
intervals. The search is coordinate-wise: starting from `base`, one dimension at a time is
varied with the others held at the best values found so far, so a space of sizes
(i, e, l, c) costs about i + e + l + c passes over the log rather than i·e·l·c. The
recommendation over every setting visited is the lower-bound rule of counterfactual.py:
the best setting is recommended over the logging policy only when the lower end of its
interval is above the logging policy's value and its data-quality report raises no warning.
Many settings compared on one log favour a lucky one; the rule's lower bound, not the point
estimate, is what guards against that, so a log too short to separate them keeps the current
policy.

Interaction sets are derived from the log's own namespaces: `none`, `actions` (each context
namespace × each action namespace, the action id included) and `all` (VW's `::` wildcard,
every pair).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..config import AppConfig
from ..decision.engine import DecisionEngine
from .counterfactual import (
    LOGGED,
    Candidate,
    CandidateResult,
    CounterfactualReport,
    counterfactual,
    make_candidate,
    recommend,
)
from .dataset import LoggedBandit
from .intervals import IntervalKind
from .registry import make_estimators
from .reward_model import RewardModelKind, cross_fit

DEFAULT_EXPLORERS: dict[str, dict[str, Any]] = {
    "epsilon 0.05": {"type": "epsilon", "epsilon": 0.05},
    "epsilon 0.2": {"type": "epsilon", "epsilon": 0.2},
    "softmax 10": {"type": "softmax", "lambda": 10},
    "squarecb": {"type": "squarecb"},
}


@dataclass
class SearchSpace:
    """Values tried per dimension; `None` as an interaction set derives them from the log.

    Dimensions are searched in the order interactions, explorer, learning rate, cb type.
    """

    interactions: Mapping[str, list[str]] | None = None
    explorers: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: DEFAULT_EXPLORERS)
    learning_rates: Sequence[float | None] = (None, 0.1, 2.0)
    cb_types: Sequence[str] = ("mtr", "dr", "ips")

    def dimensions(self, data: LoggedBandit) -> list[tuple[str, dict[str, Any]]]:
        """(dimension, {label: policy-config patch}) in search order."""
        interactions = self.interactions or interaction_sets(data)
        return [
            ("interactions", {k: {"interactions": v} for k, v in interactions.items()}),
            ("explorer", {k: {"explorer": dict(v)} for k, v in self.explorers.items()}),
            (
                "learning_rate",
                {_rate_label(r): {"learning_rate": r} for r in self.learning_rates},
            ),
            ("cb_type", {str(c): {"cb_type": c} for c in self.cb_types}),
        ]


def _rate_label(rate: float | None) -> str:
    return "lr default" if rate is None else f"lr {rate:g}"


def interaction_sets(data: LoggedBandit) -> dict[str, list[str]]:
    """`none`, `actions` (context × action namespaces, by first letter) and `all` (`::`),
    from the namespaces of the log's first decision."""
    x = data.feature_set(0)
    context = sorted({ns[0] for ns in x.context})
    actions = sorted({ns[0] for a in x.actions for ns in a})
    crosses = [c + a for c in context for a in actions]
    sets: dict[str, list[str]] = {"none": []}
    if crosses:
        sets["actions"] = crosses
    sets["all"] = ["::"]
    return sets


@dataclass
class DiscoveryReport:
    """Every setting visited, ranked; the recommendation; and the path of the search."""

    report: CounterfactualReport
    path: list[tuple[str, str]]
    """(dimension, the value kept) in search order."""
    recommended_config: AppConfig | None
    """The recommended setting's app config; None when the current policy is kept."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Settings VW refuses (name → its message), left out of the search."""

    def table(self) -> str:
        steps = ", ".join(f"{d} = {v}" for d, v in self.path)
        lines = [self.report.table(), f"search path (best value per dimension): {steps}"]
        lines += [f"skipped {name}: {why}" for name, why in self.skipped.items()]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.report.to_dict(),
            "path": [{"dimension": d, "value": v} for d, v in self.path],
            "skipped": self.skipped,
            "recommended_config": None
            if self.recommended_config is None
            else self.recommended_config.model_dump(mode="json", by_alias=True),
        }


def _policy_of(base: Mapping[str, Any] | None) -> dict[str, Any]:
    policy = dict(base or {})
    policy.setdefault("kind", "vw")
    if policy["kind"] != "vw":
        raise ValueError(
            f"discovery searches Vowpal Wabbit settings; base has kind {policy['kind']!r}"
        )
    return policy


def _name(choice: Mapping[str, str]) -> str:
    return " | ".join(choice.values())


def discover(
    data: LoggedBandit,
    base: Mapping[str, Any] | None = None,
    *,
    space: SearchSpace | None = None,
    methods: Sequence[str] = ("ips", "snips", "dr"),
    primary: str | None = None,
    reward_model_kind: RewardModelKind = "auto",
    interval: IntervalKind = "normal",
    alpha: float = 0.05,
    seed: int = 0,
    progress: bool | None = None,
) -> DiscoveryReport:
    """Search `space` around the VW policy config `base` (default `{kind: vw}`) on `data`."""
    space = space or SearchSpace()
    policy = _policy_of(base)
    dimensions = space.dimensions(data)
    uses_model = any(e.uses_reward_model for e in make_estimators(methods))
    fit = (
        cross_fit(data, kind=reward_model_kind, seed=seed, progress=progress)
        if uses_model
        else None
    )
    choice = {dim: next(iter(values)) for dim, values in dimensions}
    patches = {dim: values for dim, values in dimensions}
    visited: dict[str, CandidateResult] = {}
    last: CounterfactualReport | None = None
    path = []

    def config_of(c: Mapping[str, str]) -> dict[str, Any]:
        out = dict(policy)
        for dim, label in c.items():
            out.update(patches[dim][label])
        return out

    skipped: dict[str, str] = {}
    for dim, values in dimensions:
        trials = {label: {**choice, dim: label} for label in values}
        todo = []
        for c in trials.values():
            name = _name(c)
            if name in visited or name in skipped:
                continue
            candidate = make_candidate(name, config_of(c), data)
            problem = _unusable(candidate)
            if problem:
                skipped[name] = problem
            else:
                todo.append(candidate)
        trials = {k: c for k, c in trials.items() if _name(c) not in skipped}
        if todo:
            last = counterfactual(
                data,
                todo,
                methods=methods,
                primary=primary,
                reward_model=fit,
                interval=interval,
                alpha=alpha,
                seed=seed,
                progress=progress,
            )
            visited.update({r.name: r for r in last.results})
        key = last.primary if last else (primary or methods[-1])
        best = max(trials, key=lambda label: visited[_name(trials[label])].estimates[key].value)
        choice = trials[best]
        path.append((dim, best))
    assert last is not None
    results = sorted(visited.values(), key=lambda r: r.estimates[last.primary].value, reverse=True)
    recommendation, reason = recommend(results, last.baseline, LOGGED, last.primary)
    report = CounterfactualReport(
        results=results,
        baseline=last.baseline,
        current=LOGGED,
        primary=last.primary,
        recommendation=recommendation,
        reason=reason,
        reward_model=fit,
        n_rows=data.n,
    )
    chosen = next((r.config for r in results if r.name == recommendation), None)
    return DiscoveryReport(report, path, chosen, skipped)


def _unusable(candidate: Candidate) -> str | None:
    """Why VW refuses this combination (e.g. a cb type an explorer does not support)."""
    try:
        DecisionEngine(candidate.config)
    except (RuntimeError, ValueError) as exc:
        return str(exc).splitlines()[0]
    return None
