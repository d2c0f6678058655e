"""Counterfactual training: which policy or exploration setting should this app run?

Each candidate configuration is re-run over the log in time order through a fresh
`DecisionEngine`: at every row it first gives its served pmf (from a model that has seen
only earlier rows), then learns the logged event, as the live learner would. Its online
value is estimated by IPS / SNIPS / DR on those pmfs, with intervals.

Recommendation rule: the best candidate (by the primary estimator) is preferred over the
current policy only when its interval's lower end is above the current policy's estimate
and its data-quality report (quality.py) raises no warning; otherwise keep the current
policy. The current policy is the logging policy (its value
is the mean logged reward) unless one of the candidates is named as current.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import TypeAdapter
from tabulate import tabulate

from ..config import AppConfig, SlotConfig
from ..decision.engine import DecisionEngine
from ..policy_config import PolicyConfig
from .dataset import LoggedBandit
from .estimators import OnPolicy, weight_diagnostics
from .intervals import DEFAULT_BOOTSTRAP_SAMPLES, IntervalKind
from .quality import QualityReport, quality_report
from .registry import evaluate, make_estimators
from .reward_model import RewardModelFit, RewardModelKind, cross_fit
from .summary import Estimate
from .target import target_pmfs

LOGGED = "logged policy"
_POLICY = TypeAdapter(PolicyConfig)


_ALIGN = ("right", "left", "left", *["right"] * 5)  # the rank and the figures to the right


@dataclass(frozen=True)
class Candidate:
    name: str
    config: AppConfig


def make_candidate(
    name: str, spec: AppConfig | Mapping[str, Any] | Any, data: LoggedBandit | None = None
) -> Candidate:
    """A candidate from an app config, or from a bare policy config (applied to every slot of
    a multi-slot log)."""
    if isinstance(spec, AppConfig):
        return Candidate(name, spec)
    if isinstance(spec, Mapping) and ("kind" in spec) and not ({"policy", "slots"} & set(spec)):
        policy = _POLICY.validate_python(spec)
    elif isinstance(spec, Mapping):
        return Candidate(name, AppConfig.model_validate(spec))
    else:
        policy = _POLICY.validate_python(spec)
    slot_names = (
        [] if data is None or data.slot is None else [s for s in data.slot_names if s is not None]
    )
    if slot_names:
        slots = [SlotConfig(name=s, policy=policy) for s in slot_names]
        return Candidate(name, AppConfig(slots=slots))
    return Candidate(name, AppConfig(policy=policy))


@dataclass
class CandidateResult:
    name: str
    config: AppConfig
    estimates: dict[str, Estimate]
    diagnostics: dict[str, float]
    seconds: float
    quality: QualityReport | None = None
    """The data-quality report of this candidate's estimate (ESS, weights, support gaps)."""


@dataclass
class CounterfactualReport:
    results: list[CandidateResult]
    """Ranked, best first by the primary estimator."""
    baseline: Estimate
    current: str
    primary: str
    recommendation: str
    """The policy to run: a candidate's name, or `current` when none is better for sure."""
    reason: str
    reward_model: RewardModelFit | None = None
    n_rows: int = 0

    def best(self) -> CandidateResult:
        return self.results[0]

    def table(self) -> str:
        header = ["rank", "policy", "method", "estimate", "stderr", "ci_low", "ci_high", "ess"]
        rows = []
        if self.current == LOGGED:
            rows.append(
                ["-", f"{LOGGED} (current)", self.baseline.method, *_numbers(self.baseline), "-"]
            )
        for rank, r in enumerate(self.results, start=1):
            for method, e in r.estimates.items():
                label = f"{r.name} (current)" if r.name == self.current else r.name
                rows.append([str(rank), label, method, *_numbers(e), f"{r.diagnostics['ess']:.0f}"])
        lines = [tabulate(rows, header, disable_numparse=True, colalign=_ALIGN)]
        lines.append("")
        for r in self.results:
            if r.quality is not None:
                lines.append(f"{r.name}: {r.quality.text()}")
        lines.append(f"recommendation: {self.recommendation} — {self.reason}")
        return "\n".join(lines)

    @property
    def warnings(self) -> dict[str, list[str]]:
        """Each candidate's data-quality warnings (candidates without any left out)."""
        return {
            r.name: r.quality.warnings for r in self.results if r.quality and r.quality.warnings
        }

    def plot(self, path: str | Path) -> Path:
        from .plot import plot_estimates

        per_policy = {r.name: r.estimates for r in self.results}
        return plot_estimates(
            per_policy,
            Path(path),
            baseline=(self.current, self.baseline),
            title=f"Estimated value over {self.n_rows:,} logged events",
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "current": self.current,
            "baseline": self.baseline.to_dict(),
            "primary": self.primary,
            "recommendation": self.recommendation,
            "reason": self.reason,
            "n_rows": self.n_rows,
            "results": [
                {
                    "name": r.name,
                    "config": r.config.model_dump(mode="json", by_alias=True),
                    "estimates": {m: e.to_dict() for m, e in r.estimates.items()},
                    "diagnostics": r.diagnostics,
                    "quality": None if r.quality is None else r.quality.to_dict(),
                    "seconds": r.seconds,
                }
                for r in self.results
            ],
        }


def _numbers(e: Estimate) -> list[str]:
    return [f"{e.value:.4f}", f"{e.stderr:.4f}", f"{e.ci_low:.4f}", f"{e.ci_high:.4f}"]


def recommend(
    results: Sequence[CandidateResult], baseline: Estimate, current: str, primary: str
) -> tuple[str, str]:
    best = results[0]
    estimate = best.estimates[primary]
    if best.name == current:
        return current, f"the current policy {current} has the highest {primary} estimate"
    if best.quality is not None and not best.quality.trustworthy:
        return current, (
            f"the best candidate {best.name} ({primary} {estimate.value:.4f}) rests on data too "
            f"weak to trust: {best.quality.warnings[0]}"
        )
    if estimate.ci_low > baseline.value:
        return best.name, (
            f"the {primary} lower bound of {best.name}, {estimate.ci_low:.4f}, is above the "
            f"current policy's estimate {baseline.value:.4f}"
        )
    return current, (
        f"the best candidate {best.name} ({primary} {estimate.value:.4f}) is not better for sure: "
        f"its lower bound {estimate.ci_low:.4f} does not beat the current {baseline.value:.4f}"
    )


def counterfactual(
    data: LoggedBandit,
    candidates: Sequence[Candidate],
    *,
    methods: Sequence[str] = ("ips", "snips", "dr"),
    primary: str | None = None,
    current: str | None = None,
    learn: bool = True,
    reward_model: RewardModelFit | np.ndarray | None = None,
    reward_model_kind: RewardModelKind = "auto",
    interval: IntervalKind = "normal",
    alpha: float = 0.05,
    n_boot: int = DEFAULT_BOOTSTRAP_SAMPLES,
    seed: int = 0,
    progress: bool | None = None,
) -> CounterfactualReport:
    """Re-run each candidate over the log (learning as it goes) and rank them."""
    if not candidates:
        raise ValueError("give at least one candidate policy")
    names = [c.name for c in candidates]
    if len(set(names)) != len(names):
        raise ValueError(f"candidate names must be unique, got {names}")
    estimators = make_estimators(methods)
    primary = primary or estimators[-1].label
    if primary not in [e.label for e in estimators]:
        raise ValueError(
            f"primary estimator {primary!r} is not among {[e.label for e in estimators]}"
        )
    if current is not None and current not in names:
        raise ValueError(f"current policy {current!r} is not one of the candidates {names}")

    q_hat = None
    fit = reward_model if isinstance(reward_model, RewardModelFit) else None
    if any(e.uses_reward_model for e in estimators):
        if reward_model is None:
            fit = cross_fit(data, kind=reward_model_kind, seed=seed, progress=progress)
        q_hat = fit.q_hat if fit is not None else np.asarray(reward_model)
    # DR and SNDR get a reward model fitted for their correction, per candidate (its
    # weights depend on the target), unless the caller brought the reward model
    fit_for_dr = reward_model is None and any(e.uses_dr_model for e in estimators)

    results = []
    for c in candidates:
        start = time.perf_counter()
        pmfs = target_pmfs(
            DecisionEngine(c.config), data, learn=learn, progress=progress, desc=c.name
        )
        q_hat_dr = (
            cross_fit(data, kind=reward_model_kind, seed=seed, weighting="mrdr", pi_e=pmfs).q_hat
            if fit_for_dr
            else None
        )
        ope = data.ope_data(pmfs, q_hat, q_hat_dr)
        estimates = evaluate(
            ope, estimators, interval=interval, alpha=alpha, n_boot=n_boot, rng=seed
        )
        results.append(
            CandidateResult(
                c.name,
                c.config,
                estimates,
                weight_diagnostics(ope),
                time.perf_counter() - start,
                quality_report(ope, data),
            )
        )
    results.sort(key=lambda r: r.estimates[primary].value, reverse=True)

    if current is None:
        logged = data.ope_data(data.pi_b)
        baseline = OnPolicy().estimate(
            logged, interval=interval, alpha=alpha, n_boot=n_boot, rng=seed
        )
        current_name = LOGGED
    else:
        baseline = next(r.estimates[primary] for r in results if r.name == current)
        current_name = current
    choice, reason = recommend(results, baseline, current_name, primary)
    return CounterfactualReport(
        results=results,
        baseline=baseline,
        current=current_name,
        primary=primary,
        recommendation=choice,
        reason=reason,
        reward_model=fit,
        n_rows=data.n,
    )
