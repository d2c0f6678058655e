"""Which namespaces matter: the policy value lost when one is withheld, on the app's own logs.

For each namespace (of the context or of the actions) the app's policy is trained again
over the log with that namespace removed from every row (counterfactual training, as
`counterfactual()` does: it learns as it goes, in log order), and its value is estimated
off-policy (DR by default) on the same rows as the policy trained on everything:

    importance(ns) = V̂(all features) − V̂(without ns)

Both estimates are means over the same decisions, so the interval is the paired one: each
decision's linearized contribution ψ_full − ψ_without (summary.py's influence terms), a
normal interval with stderr = sd(ψ_full − ψ_without) / √n. A namespace the policy does
not need loses nothing: its interval includes zero.

The learned weights' view (`weight_share`) is read off the policy trained on everything
(see explain.py): over a sample of rows and every offered action, the mean |relative|
contribution of the namespace's features (crosses split between their namespaces), as a
share of all namespaces'. It says what the model leans on; the counterfactual value says
what it is worth.

Reference: feature (namespace) ablation as in Personalizer's feature evaluations; the
paired influence-function interval is that of Dudík, Langford & Li, "Doubly robust policy
evaluation and learning" (ICML 2011), applied to the difference of two estimates.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tabulate import tabulate

from ..config import AppConfig
from ..decision.engine import DecisionEngine
from ..decision.features import FeatureSet
from ..explain import _terms
from .dataset import LoggedBandit
from .intervals import z_value
from .registry import make_estimators
from .reward_model import cross_fit
from .summary import _decision_columns, _influence
from .target import target_pmfs


@dataclass(frozen=True, slots=True)
class NamespaceImportance:
    namespace: str
    value_lost: float  # V̂(all) − V̂(without the namespace)
    stderr: float
    ci_low: float
    ci_high: float
    value_without: float
    weight_share: float  # the learned weights' view, in [0, 1]


@dataclass(frozen=True)
class ImportanceReport:
    method: str
    value: float  # V̂ of the policy trained on every namespace
    stderr: float
    alpha: float
    n_rows: int
    namespaces: list[NamespaceImportance]  # most important first

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "value": self.value,
            "stderr": self.stderr,
            "alpha": self.alpha,
            "n_rows": self.n_rows,
            "namespaces": [dataclasses.asdict(n) for n in self.namespaces],
        }

    def table(self) -> str:
        level = f"{100 * (1 - self.alpha):g}%"
        rows = [
            (
                n.namespace,
                f"{n.value_lost:+.4f}",
                f"[{n.ci_low:+.4f}, {n.ci_high:+.4f}]",
                f"{n.weight_share:.1%}",
            )
            for n in self.namespaces
        ]
        header = ("namespace", "value lost", f"{level} interval", "weights")
        return "\n".join(
            [
                f"value with every namespace ({self.method}, {self.n_rows} rows): "
                f"{self.value:.4f} ± {self.stderr:.4f}",
                tabulate(rows, header, disable_numparse=True, colalign=("left", *["right"] * 3)),
            ]
        )

    def plot(self, path: str | Path) -> Path:
        """Value lost per namespace with its interval, most important on top (PNG)."""
        from matplotlib.figure import Figure

        rows = self.namespaces[::-1]
        fig = Figure(figsize=(7.0, 1.4 + 0.45 * len(rows)))
        ax = fig.subplots()
        ys = np.arange(len(rows))
        xs = np.array([n.value_lost for n in rows])
        err = [xs - [n.ci_low for n in rows], [n.ci_high for n in rows] - xs]
        ax.errorbar(xs, ys, xerr=err, fmt="o", capsize=3)
        ax.axvline(0.0, color="grey", linestyle="--", linewidth=1)
        ax.set_yticks(ys, [n.namespace for n in rows])
        ax.set_xlabel(f"policy value lost when withheld ({self.method}, ±{1 - self.alpha:.0%})")
        ax.set_title("Namespace importance")
        fig.tight_layout()
        out = Path(path)
        fig.savefig(out, dpi=110)
        return out


def log_namespaces(data: LoggedBandit, sample: int = 200) -> list[str]:
    """Namespaces seen in the first `sample` rows, context first, in order of appearance."""
    seen: dict[str, None] = {}
    for i in range(min(sample, data.n)):
        x = data.feature_set(i)
        seen.update(dict.fromkeys(k for k in x.context if not k.startswith("_")))
        for a in x.actions:
            seen.update(dict.fromkeys(k for k in a if not k.startswith("_")))
    return list(seen)


def without(x: FeatureSet, namespace: str) -> FeatureSet:
    """`x` with one namespace removed from the context and from every action."""
    context = {k: v for k, v in x.context.items() if k != namespace}
    actions = [{k: v for k, v in a.items() if k != namespace} for a in x.actions]
    return FeatureSet(context, actions, list(x.action_ids))


def _withheld(data: LoggedBandit, namespace: str) -> LoggedBandit:
    source = data.feature_set
    return dataclasses.replace(data, features=lambda i: without(source(i), namespace))


def _weight_shares(
    policy: Any, data: LoggedBandit, namespaces: list[str], rows: int
) -> dict[str, float]:
    totals = dict.fromkeys(namespaces, 0.0)
    step = max(1, data.n // rows)
    for i in range(0, data.n, step):
        _, _, terms, _ = _terms(policy, data.feature_set(i))
        by_label: dict[str, list[float]] = {}
        for a, action_terms in enumerate(terms):
            for label, v, w in action_terms:
                by_label.setdefault(label, [0.0] * len(terms))[a] += v * w
        for label, values in by_label.items():
            spread = float(np.mean(np.abs(np.asarray(values) - np.mean(values))))
            parts = [p.split("^", 1)[0] for p in label.split("*")]
            for ns in parts:
                if ns in totals:
                    totals[ns] += spread / len(parts)
    total = sum(totals.values())
    return {ns: (v / total if total > 0 else 0.0) for ns, v in totals.items()}


def feature_importance(
    data: LoggedBandit,
    config: AppConfig | dict[str, Any],
    *,
    namespaces: list[str] | None = None,
    method: str = "dr",
    alpha: float = 0.05,
    seed: int = 0,
    weight_rows: int = 500,
    progress: bool | None = None,
) -> ImportanceReport:
    """Importance of each namespace to `config`'s policy, on `data` (see the module doc)."""
    app = config if isinstance(config, AppConfig) else AppConfig.model_validate(config)
    (estimator,) = make_estimators([method])
    names = namespaces if namespaces is not None else log_namespaces(data)
    if not names:
        raise ValueError("the log's rows have no namespaces to withhold")
    q_hat = None
    if estimator.uses_reward_model:
        q_hat = cross_fit(data, seed=seed, progress=progress).q_hat

    def influence(engine: DecisionEngine, rows: LoggedBandit, desc: str) -> tuple[float, Any]:
        pmfs = target_pmfs(engine, rows, learn=True, progress=progress, desc=desc)
        return _influence(_decision_columns(estimator.terms(rows.ope_data(pmfs, q_hat))))

    full = DecisionEngine(app)
    value, psi = influence(full, data, "all namespaces")
    n = psi.size
    shares = _weight_shares(full.policy, data, names, weight_rows)
    z = z_value(alpha)
    out = []
    for ns in names:
        v_without, psi_without = influence(
            DecisionEngine(app), _withheld(data, ns), f"without {ns}"
        )
        diff = psi - psi_without
        se = float(np.std(diff, ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
        lost = value - v_without
        out.append(
            NamespaceImportance(ns, lost, se, lost - z * se, lost + z * se, v_without, shares[ns])
        )
    out.sort(key=lambda r: -r.value_lost)
    se_full = float(np.std(psi, ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    return ImportanceReport(estimator.label, value, se_full, alpha, n, out)
