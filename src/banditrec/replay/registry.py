"""Every off-policy estimator by name, in one explicit list.

`ESTIMATORS` is what `banditrec evaluate --estimator`, `banditrec importance`, the
service's importance route and `evaluate(data, ["ips", "dr", …])` choose from: the
single-decision estimators of `estimators.py` and the multi-slot ones of `multislot.py`.
A new estimator is added here, to this list; importing a module registers nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType

import numpy as np

from . import estimators as single
from . import multislot
from .estimators import Estimator, OPEData
from .intervals import DEFAULT_BOOTSTRAP_SAMPLES, IntervalKind
from .summary import Estimate, summarize

ESTIMATORS: Mapping[str, type[Estimator]] = MappingProxyType(
    {
        cls.name: cls
        for cls in (
            single.OnPolicy,
            single.IPS,
            single.ClippedIPS,
            single.SNIPS,
            single.DM,
            single.DR,
            single.SNDR,
            single.SwitchDR,
            single.DROS,
            multislot.PseudoInverse,
            multislot.SlateIPS,
        )
    }
)
DEFAULT_METHODS = ("ips", "snips", "dm", "dr")


def make_estimators(methods: Iterable[str | Estimator]) -> list[Estimator]:
    """Estimators from names (`ESTIMATORS`) or instances, in order."""
    out = []
    for m in methods:
        if isinstance(m, Estimator):
            out.append(m)
        elif m in ESTIMATORS:
            out.append(ESTIMATORS[m]())
        else:
            raise ValueError(f"unknown estimator {m!r}; choose from {sorted(ESTIMATORS)}")
    return out


def evaluate(
    data: OPEData,
    estimators: Sequence[str | Estimator] = DEFAULT_METHODS,
    *,
    interval: IntervalKind = "normal",
    alpha: float = 0.05,
    n_boot: int = DEFAULT_BOOTSTRAP_SAMPLES,
    rng: np.random.Generator | int | None = None,
    value_ranges: Mapping[str, tuple[float, float]] | None = None,
) -> dict[str, Estimate]:
    """Estimates of one target policy by several estimators at once (one bootstrap pass)."""
    chosen = make_estimators(estimators)
    terms = {e.label: e.terms(data) for e in chosen}
    return summarize(
        terms, interval=interval, alpha=alpha, n_boot=n_boot, rng=rng, value_ranges=value_ranges
    )
