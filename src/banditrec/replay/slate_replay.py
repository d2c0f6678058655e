"""Slate logs → `SlateLog` arrays for a target policy, and the `banditrec evaluate` report.

A slate log is the event log's export: one joined DSJson record per position (see
slates/dsjson.py). For each target policy, the slates are replayed in time order: at each
position the target's served pmf (its policy, mode and floor, as the engine serves it)
over the candidates the position had gives π(a_j | prefix); with `learn`, the target then
learns from the slate's records (counterfactual training, as for single decisions).
The reward model of `cascade_dr` is a per-position mean reward of each action, shrunk
to the position's mean and cross-fitted over two folds of slates.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from tabulate import tabulate

from ..config import AppConfig
from ..decision.costs import logged_reward
from ..decision.engine import DecisionEngine
from ..decision.features import FeatureSet
from ..decision.record import META_KEY, NEVER_ACTIVATED, NOT_JOINED, unlearnable
from ..decision.sampling import event_seed
from ..slates.dsjson import POSITION_KEY
from .readers import LogFormatError, _lines
from .slates import SlateLog, SlateReport, estimate_slates

Slate = list[dict[str, Any]]
# A slate is skipped when any of its positions is `unlearnable`: why, first reason first.
_SLATE_SKIPS = {NOT_JOINED: "slates not joined", NEVER_ACTIVATED: "slates never activated"}


@dataclass
class SlateRecords:
    """Joined slates (records per position, in order) and what was left out, and why."""

    slates: list[Slate]
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def positions(self) -> int:
        return max((len(s) for s in self.slates), default=0)


def is_slate_log(path: Path) -> bool:
    """Whether the first record of a DSJson log is a slate's position."""
    for line in _lines(path):
        if line.strip():
            try:
                meta = orjson.loads(line).get(META_KEY) or {}
            except (orjson.JSONDecodeError, AttributeError):
                return False
            return meta.get(POSITION_KEY) is not None
    return False


def group_slates(records: Iterable[Mapping[str, Any]], limit: int | None = None) -> SlateRecords:
    """Position records → slates; a slate counts when every position joined and learns."""
    by_event: dict[str, list[dict[str, Any]]] = {}
    skipped: dict[str, int] = defaultdict(int)
    for record in records:
        meta = record.get(META_KEY) or {}
        if meta.get(POSITION_KEY) is None:
            skipped["not a slate position"] += 1
            continue
        by_event.setdefault(meta["event_id"], []).append(dict(record))
    slates = []
    for positions in by_event.values():
        positions.sort(key=lambda r: r[META_KEY][POSITION_KEY])
        numbers = [r[META_KEY][POSITION_KEY] for r in positions]
        if numbers != list(range(1, len(numbers) + 1)):
            skipped["slates missing a position"] += 1
        elif reasons := {unlearnable(r) for r in positions} - {None}:
            skipped[next(label for why, label in _SLATE_SKIPS.items() if why in reasons)] += 1
        else:
            slates.append(positions)
        if limit is not None and len(slates) >= limit:
            break
    return SlateRecords(slates, dict(skipped))


def read_slates(path: Path, limit: int | None = None) -> SlateRecords:
    def records() -> Iterable[dict[str, Any]]:
        for number, line in enumerate(_lines(path), start=1):
            if line.strip():
                try:
                    yield orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise LogFormatError(f"{path}:{number}: not valid JSON ({exc})") from None

    out = group_slates(records(), limit)
    if not out.slates:
        raise LogFormatError(f"{path}: no joined slates to evaluate ({out.skipped or 'empty'})")
    return out


def _reward_model(slates: Sequence[Slate]) -> list[dict[tuple[int, str], float]]:
    """Per fold f (slate index mod 2): q̂(position, action id) fitted on the other fold."""
    sums: list[dict[tuple[int, str], list[float]]] = [defaultdict(lambda: [0.0, 0.0]) for _ in "ab"]
    for i, slate in enumerate(slates):
        stats = sums[i % 2]
        for record in slate:
            meta = record[META_KEY]
            key = (meta[POSITION_KEY], meta["action_ids"][record["_labelIndex"]])
            for k in (key, (key[0], "")):
                stats[k][0] += _reward(record)
                stats[k][1] += 1.0
    models = []
    for fold in (0, 1):
        other = sums[1 - fold]
        model = {}
        for (position, action), (total, count) in other.items():
            if action:
                mean_total, mean_count = other[(position, "")]
                prior = mean_total / mean_count
                model[(position, action)] = (total + prior) / (count + 1.0)
            else:
                model[(position, "")] = total / count
        models.append(model)
    return models


def slate_log(records: SlateRecords, config: AppConfig, *, learn: bool = True) -> SlateLog:
    """The (n_slates, k) arrays of `estimate_slates` for the target `config`."""
    n, k = len(records.slates), records.positions
    pscore, target = np.ones((n, k)), np.ones((n, k))
    reward, q_hat, v_hat = np.zeros((n, k)), np.zeros((n, k)), np.zeros((n, k))
    models = _reward_model(records.slates)
    engine = DecisionEngine(config)
    for i, slate in enumerate(records.slates):
        model = models[i % 2]
        for j, record in enumerate(slate):
            meta = record[META_KEY]
            ids = meta["action_ids"]
            x = FeatureSet.from_dsjson_c(record["c"], ids)
            position = meta[POSITION_KEY]
            pi = engine.pmf(x, event_seed(config.seed, meta["event_id"], str(position)))
            chosen = record["_labelIndex"]
            default = model.get((position, ""), 0.0)
            q = np.array([model.get((position, a), default) for a in ids])
            pscore[i, j] = record["_label_probability"]
            target[i, j] = pi[chosen]
            reward[i, j] = _reward(record)
            q_hat[i, j] = q[chosen]
            v_hat[i, j] = float(pi @ q)
        if learn:
            for record in slate:
                engine.learn(record)
    return SlateLog(pscore, target, reward, q_hat, v_hat)


@dataclass(frozen=True)
class SlateEvaluation:
    name: str
    reports: dict[str, SlateReport]


def evaluate_slates(
    records: SlateRecords,
    candidates: Sequence[tuple[str, AppConfig]],
    methods: Sequence[str] = ("cascade_ips", "cascade_dr"),
    *,
    learn: bool = True,
    alpha: float = 0.05,
) -> list[SlateEvaluation]:
    out = []
    for name, config in candidates:
        log = slate_log(records, config, learn=learn)
        out.append(SlateEvaluation(name, {m: estimate_slates(log, m, alpha) for m in methods}))
    return out


def logged_value(records: SlateRecords) -> float:
    """The logging policy's mean slate reward (its on-policy value)."""
    return float(np.mean([sum(_reward(r) for r in s) for s in records.slates]))


def table(records: SlateRecords, results: Sequence[SlateEvaluation]) -> str:
    rows = [
        (
            result.name,
            method,
            f"{report.estimate.value:.4f}",
            f"[{report.estimate.ci_low:.4f}, {report.estimate.ci_high:.4f}]",
            f"{report.ess.min():.1f}",
            f"{report.max_weight.max():.2f}",
        )
        for result in results
        for method, report in result.reports.items()
    ]
    header = ("policy", "method", "value", "interval", "min ESS", "max W")
    lines = [
        f"{len(records.slates):,} slates of up to {records.positions} positions; "
        f"logged value {logged_value(records):.4f}",
        tabulate(rows, header, disable_numparse=True, colalign=("left", "left", *["right"] * 4)),
        "per position (first method):",
    ]
    for result in results:
        first = next(iter(result.reports.values()))
        lines.append(f"  {result.name}: " + ", ".join(f"{v:.4f}" for v in first.per_position))
    return "\n".join(lines)


def to_dict(records: SlateRecords, results: Sequence[SlateEvaluation]) -> dict[str, Any]:
    return {
        "slates": len(records.slates),
        "skipped": records.skipped,
        "logged_value": logged_value(records),
        "policies": {
            r.name: {
                m: {
                    **rep.estimate.to_dict(),
                    "per_position": rep.per_position.tolist(),
                    "ess": rep.ess.tolist(),
                    "max_weight": rep.max_weight.tolist(),
                }
                for m, rep in r.reports.items()
            }
            for r in results
        },
    }


def _reward(record: dict[str, Any]) -> float:
    """A position's reward: banditrec's own, else VW's −cost (costs.logged_reward)."""
    return logged_reward(record["_label_cost"], record.get(META_KEY, {}).get("reward"))
