"""Sequential off-policy evaluation over logged trajectories, with bootstrap intervals.

Per trajectory i and step t: the logged action a_t with the behaviour policy's probability
μ_t, reward r_t, the target policy's pmf π(·|s_t), the per-step ratio ρ_t = π(a_t|s_t)/μ_t
and the cumulative weight w_t = ρ_0 ⋯ ρ_t (w_{−1} = 1). After a trajectory ends it sits in
an absorbing state: no reward, ρ = 1, so its weight carries on in the normalizers.

| method | estimate                                                              | reference            |
| ------ | --------------------------------------------------------------------- | -------------------- |
| pdis   | mean_i Σ_t γ^t w_t r_t                                                | Precup et al. 2000   |
| wpdis  | Σ_t γ^t Σ_i w_it r_it / Σ_i w_it                                      | Precup et al. 2000   |
| dr     | mean_i Σ_t γ^t [w_t (r_t − Q̂(s_t,a_t)) + w_{t−1} V̂(s_t)]               | Jiang & Li 2016      |
| wdr    | dr with each w_t normalized by its mean over trajectories             | Thomas & Brunskill 2016 |
| fqe    | mean_i V̂(s_i0)                                                        | Le et al. 2019       |

with Q̂ the fitted-Q evaluation of π (fqe.py) and V̂(s) = Σ_a π(a|s) Q̂(s, a).

Intervals: percentile bootstrap over trajectories (Poisson(1) weights per trajectory). The
importance-sampling estimators are recomputed on every replicate; FQE and DR refit Q̂ on
each of `n_boot_model` replicates, so their intervals include the model's variance (not
its bias: a misspecified Q̂ biases FQE, which DR corrects).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from tabulate import tabulate

from ..replay.intervals import percentile_interval
from ..replay.progress import progress_bar
from ..replay.quality import QualityReport, weight_quality
from ..replay.summary import Estimate
from .fqe import FittedQ, FQESettings, fit_fqe, fqe_data
from .trajectories import Trajectories

Method = Literal["pdis", "wpdis", "dr", "wdr", "fqe"]
METHODS: tuple[str, ...] = ("pdis", "wpdis", "dr", "wdr", "fqe")
_MODEL_METHODS = frozenset({"dr", "wdr", "fqe"})


@dataclass(frozen=True, eq=False)
class StepArrays:
    """What the estimators read, (N, H) unless noted, padded after each trajectory's end."""

    reward: np.ndarray
    weight: np.ndarray  # cumulative importance weight w_t
    weight_before: np.ndarray  # w_{t−1}
    mask: np.ndarray
    discount: np.ndarray  # (H,) γ^t

    @classmethod
    def build(cls, traj: Trajectories, pi_e: np.ndarray, discount: float = 1.0) -> StepArrays:
        mask = traj.mask
        taken = np.take_along_axis(pi_e, traj.action[:, :, None], axis=2)[:, :, 0]
        rho = np.where(mask, taken / traj.pscore, 1.0)
        weight = np.cumprod(rho, axis=1)
        before = np.ones_like(weight)
        before[:, 1:] = weight[:, :-1]
        return cls(
            reward=np.where(mask, traj.reward, 0.0),
            weight=weight,
            weight_before=before,
            mask=mask,
            discount=discount ** np.arange(traj.horizon, dtype=np.float64),
        )


def _mean(values: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted means over trajectories: values (N, …), w (B, N) → (B, …)."""
    total = w.sum(axis=1)
    flat = values.reshape(values.shape[0], -1)
    out = (w @ flat) / np.where(total > 0, total, 1.0)[:, None]
    return out.reshape(w.shape[0], *values.shape[1:])


def _ratio(num: np.ndarray, den: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Σ_i W_i num_it / Σ_i W_i den_it per replicate and step: (B, H)."""
    top, bottom = w @ num, w @ den
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(bottom > 0, top / bottom, 0.0)


def pdis(s: StepArrays, w: np.ndarray) -> np.ndarray:
    return _mean((s.weight * s.reward) @ s.discount, w)


def wpdis(s: StepArrays, w: np.ndarray) -> np.ndarray:
    return _ratio(s.weight * s.reward, s.weight, w) @ s.discount


def dr(s: StepArrays, w: np.ndarray, q_taken: np.ndarray, v: np.ndarray) -> np.ndarray:
    terms = s.weight * (s.reward - q_taken) + s.weight_before * v
    return _mean(terms @ s.discount, w)


def wdr(s: StepArrays, w: np.ndarray, q_taken: np.ndarray, v: np.ndarray) -> np.ndarray:
    correction = _ratio(s.weight * (s.reward - q_taken), s.weight, w)
    baseline = _ratio(s.weight_before * v, s.weight_before, w)
    return (correction + baseline) @ s.discount


def fqe(v: np.ndarray, w: np.ndarray) -> np.ndarray:
    return _mean(v[:, 0], w)


@dataclass(frozen=True)
class WeightDiagnostics:
    """How far the behaviour policy is from the target: cumulative weights at each trajectory's end."""

    mean_final_weight: float  # ≈ 1 when the propensities are right
    max_final_weight: float
    effective_sample_size: float  # (Σ w)² / Σ w² of the final weights
    trajectories: int
    steps: int
    quality: QualityReport
    """The data-quality report of the final weights, with its warnings."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            k: getattr(self, k) for k in self.__dataclass_fields__ if k != "quality"
        }
        return {**out, "warnings": self.quality.warnings}


@dataclass
class SequentialReport:
    estimates: dict[str, Estimate]
    diagnostics: WeightDiagnostics
    discount: float
    fitted_q: FittedQ | None = field(default=None, repr=False)

    def table(self) -> str:
        rows = [
            (name, f"{e.value:.4f}", f"{e.stderr:.4f}", f"[{e.ci_low:.4f}, {e.ci_high:.4f}]")
            for name, e in self.estimates.items()
        ]
        header = ("method", "value", "stderr", "interval")
        lines = [tabulate(rows, header, disable_numparse=True, colalign=("left", *["right"] * 3))]
        d = self.diagnostics
        lines.append(f"{d.trajectories} trajectories, {d.steps} steps; final weights:")
        lines.append(d.quality.text())
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "discount": self.discount,
            "estimates": {k: e.to_dict() for k, e in self.estimates.items()},
            "diagnostics": self.diagnostics.to_dict(),
        }


def _model_terms(
    traj: Trajectories, pi_e: np.ndarray, fitted: FittedQ, bounds: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Q̂(s_t, a_t) and V̂(s_t), (N, H), 0 on padding, within the possible returns."""
    q = fitted.q(traj.obs).clip(*bounds)
    q_taken = np.take_along_axis(q, traj.action[:, :, None], axis=2)[:, :, 0]
    v = np.einsum("nha,nha->nh", q, pi_e)
    mask = traj.mask
    return np.where(mask, q_taken, 0.0), np.where(mask, v, 0.0)


def evaluate_sequential(
    traj: Trajectories,
    pi_e: np.ndarray,
    *,
    methods: Sequence[str] = METHODS,
    discount: float = 1.0,
    alpha: float = 0.05,
    n_boot: int = 1000,
    n_boot_model: int = 100,
    fqe_settings: FQESettings | None = None,
    rng: np.random.Generator | int | None = 0,
    progress: bool | None = None,
) -> SequentialReport:
    """Estimate the target policy's expected (discounted) return per trajectory.

    `pi_e` is (N, H, A): the target policy's pmf at every logged step over the log's action
    vocabulary (see `target_pmfs`).
    """
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ValueError(f"unknown methods {unknown}; choose from {list(METHODS)}")
    if not 0.0 < discount <= 1.0:
        raise ValueError(f"discount must be in (0, 1], got {discount}")
    expected_shape = (traj.n, traj.horizon, traj.n_actions)
    pi_e = np.asarray(pi_e, dtype=np.float64)
    if pi_e.shape != expected_shape:
        raise ValueError(f"pi_e must be (N, H, A) = {expected_shape}, got {pi_e.shape}")
    if traj.n < 2:
        raise ValueError("need at least 2 trajectories for an interval")
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    steps = StepArrays.build(traj, pi_e, discount)
    ones = np.ones((1, traj.n))
    boot = generator.poisson(1.0, size=(n_boot, traj.n)).astype(np.float64)

    values: dict[str, float] = {}
    replicates: dict[str, np.ndarray] = {}
    for name, fn in (("pdis", pdis), ("wpdis", wpdis)):
        if name in methods:
            values[name] = float(fn(steps, ones)[0])
            replicates[name] = fn(steps, boot)

    fitted = None
    model_methods = [m for m in methods if m in _MODEL_METHODS]
    if model_methods:
        settings = fqe_settings or FQESettings()
        data = fqe_data(traj.obs, traj.action, traj.reward, traj.mask, pi_e, settings.degree)
        fitted = fit_fqe(data, discount, settings)
        bounds = (
            traj.horizon * min(float(data.reward.min()), 0.0),
            traj.horizon * max(float(data.reward.max()), 0.0),
        )
        q_taken, v = _model_terms(traj, pi_e, fitted, bounds)
        for name in model_methods:
            values[name] = float(_model_estimate(name, steps, ones, q_taken, v)[0])
        reps = {name: np.zeros(n_boot_model) for name in model_methods}
        model_boot = (
            boot[:n_boot_model]
            if n_boot_model <= n_boot
            else generator.poisson(1.0, size=(n_boot_model, traj.n)).astype(np.float64)
        )
        with progress_bar(n_boot_model, "bootstrap FQE", progress, unit=" fits") as bar:
            for b in range(n_boot_model):
                wb = model_boot[b]
                refit = fit_fqe(data, discount, settings, trajectory_weights=wb)
                qb, vb = _model_terms(traj, pi_e, refit, bounds)
                for name in model_methods:
                    reps[name][b] = _model_estimate(name, steps, wb[None, :], qb, vb)[0]
                bar.update(1)
        replicates.update(reps)

    estimates = {}
    for name in METHODS:
        if name not in values:
            continue
        rep = replicates[name]
        lo, hi = percentile_interval(rep, alpha)
        se = float(np.std(rep[np.isfinite(rep)], ddof=1)) if rep.size > 1 else math.inf
        estimates[name] = Estimate(values[name], se, lo, hi, name, "bootstrap", traj.n, alpha)
    return SequentialReport(estimates, _diagnostics(traj, steps), discount, fitted)


def _model_estimate(
    name: str, s: StepArrays, w: np.ndarray, q_taken: np.ndarray, v: np.ndarray
) -> np.ndarray:
    if name == "dr":
        return dr(s, w, q_taken, v)
    if name == "wdr":
        return wdr(s, w, q_taken, v)
    return fqe(v, w)


def _diagnostics(traj: Trajectories, s: StepArrays) -> WeightDiagnostics:
    quality = weight_quality(s.weight[:, -1], units="trajectories")
    return WeightDiagnostics(
        mean_final_weight=quality.mean_weight,
        max_final_weight=quality.max_weight,
        effective_sample_size=quality.ess,
        trajectories=traj.n,
        steps=int(traj.mask.sum()),
        quality=quality,
    )
