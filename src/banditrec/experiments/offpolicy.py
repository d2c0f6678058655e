"""Every arm evaluated off-policy on all arms' traffic, beside its online value on its slice.

An arm's online estimate uses only the decisions it served. Every other arm's decisions
say something about it too, wherever the two would choose alike: on the latest joined
decisions of all arms, each arm j is estimated by self-normalized IPS with the **mixture**
of the arms as the logging policy (the balance heuristic of multiple importance sampling:
Veach & Guibas 1995; for bandit logs from several loggers, Agarwal et al., *Effective
Evaluation Using Logged Bandit Feedback from Multiple Loggers*, KDD 2017):

    μ(a|x) = Σ_k s_k · π_k(a|x),    w_i = π_j(a_i|x_i) / μ(a_i|x_i),
    V̂_j = Σ w_i r_i / Σ w_i  (SNIPS, replay/estimators.py), 95% normal interval.

s_k is arm k's share of units (its logged `arm_probability`) and π_k its pmf as it serves
(explorer and floor). For the arm that served decision i, π_k(a_i|x_i) is the logged
probability, exact; for the others, their current model's. Because a unit's arm is a hash
of its id, independent of the context, the decisions of all arms are draws from μ. The
weights are at most 1/s_j, against 1/p with a single logger; where arms overlap (a learned
arm and an alternative config that both found the best action) the estimate rests on
several slices and its interval is tighter than the online one. Decisions served while the
weights were other than now (the guardrail moved them, a PATCH) are left out.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import AppConfig
from ..decision.features import FeatureSet
from ..decision.record import META_KEY
from ..decision.sampling import event_seed
from ..eventlog import AppKeys, EventLog
from ..eventlog.records import joined_record
from ..replay.estimators import SNIPS, OnPolicy, OPEData
from ..replay.registry import evaluate
from .assign import Assignment


def _shares(config: AppConfig) -> dict[str, Assignment]:
    exp = config.experiment
    assert exp is not None
    total = sum(a.weight for a in exp.arms)
    return {a.name: Assignment(a, a.weight / total) for a in exp.arms if a.weight > 0}


def _padded(pmfs: list[np.ndarray]) -> np.ndarray:
    """(n, K) pmfs, zero-padded where a request offered fewer than K actions."""
    out = np.zeros((len(pmfs), max(len(p) for p in pmfs)))
    for i, p in enumerate(pmfs):
        out[i, : len(p)] = p
    return out


def _estimate(data: OPEData, estimator: Any) -> dict[str, float]:
    e = evaluate(data, [estimator])[estimator.label]
    return {"mean": e.value, "lower": e.ci_low, "upper": e.ci_high, "n": e.n}


def arm_estimates(log: EventLog, app: str, config: AppConfig, window: int) -> dict[str, Any] | None:
    """Per arm: `online` (the mean reward of its own decisions) and `off_policy` (SNIPS on
    every arm's decisions, see the module doc), on the latest `window` joined decisions.
    None when there is no experiment (or a multi-slot app)."""
    from ..decision.engine import DecisionEngine  # the engine imports this package's assignment

    if config.experiment is None or config.slots is not None:
        return None
    shares = _shares(config)
    engine = DecisionEngine(config.model_copy(update={"mode": "online"}))
    latest = log.models.latest(app)
    if latest is not None:
        engine.load_models({**engine.model_bytes(), **latest.models}, latest.version)
    rewards, actions, served_by, mixture = [], [], [], []
    targets: dict[str, list[np.ndarray]] = {name: [] for name in shares}
    for _, fields in log.client.xrevrange(AppKeys(app).joined, count=window):
        record = joined_record(fields)
        meta = record[META_KEY]
        mine = shares.get(meta.get("arm", ""))
        if mine is None or abs(mine.probability - meta.get("arm_probability", -1.0)) > 1e-9:
            continue  # outside the experiment as it now stands
        x = FeatureSet.from_dsjson_c(record["c"], meta["action_ids"])
        seed = event_seed(config.seed, meta["event_id"])
        chosen, p = record["_labelIndex"], record["_label_probability"]
        pmfs = {name: engine.pmf(x, seed, arm=a) for name, a in shares.items()}
        mu = sum(
            a.probability * (p if name == mine.arm.name else pmfs[name][chosen])
            for name, a in shares.items()
        )
        rewards.append(meta["reward"])
        actions.append(chosen)
        served_by.append(mine.arm.name)
        mixture.append(mu)
        for name, pmf in pmfs.items():
            targets[name].append(pmf)
    if not rewards:
        return {"events": 0, "arms": {}}
    r, a, mu = np.array(rewards), np.array(actions), np.minimum(np.array(mixture), 1.0)
    by = np.array(served_by)
    out: dict[str, Any] = {"events": len(rewards), "model_version": engine.model_version}
    arms: dict[str, Any] = {}
    for name in shares:
        pi = _padded(targets[name])
        own = by == name
        entry: dict[str, Any] = {"decisions": int(own.sum()), "online": None}
        if own.sum() > 1:
            on = OPEData(r[own], a[own], np.ones(int(own.sum())), pi[own])
            entry["online"] = _estimate(on, OnPolicy())
        entry["off_policy"] = _estimate(OPEData(r, a, mu, pi), SNIPS())
        arms[name] = entry
    out["arms"] = arms
    return out
