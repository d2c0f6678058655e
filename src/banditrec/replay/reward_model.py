"""Cross-fitted reward model q̂(x, a) for DM and the doubly robust estimators.

Rows are split into folds by decision; each fold's q̂ comes from a model fitted on the
other folds only, so no row is scored by a model that was trained on it (a model scoring
its own training rows looks better than it is, which biases DM and the DR corrections).

Features: the log's dense context (simulators, imported logs), one model per action id
when every action id has enough data for its own (`EVENTS_PER_WEIGHT`), else one shared
model on the context and the one-hot action id (rare rewards over many actions: a model per
action would see a click or two each; on a multi-slot log, one such model per slot or one
shared by the slots, whichever predicts the held-out rewards better); otherwise the same
hashed features the numpy policies use (`FeatureSet.hashed(dim)`: action features and
context × action crosses) with one shared model. Rows whose inputs are identical share one
featurization. Models: ridge (closed form, numpy), logistic (scikit-learn; binary rewards),
or the per-action mean reward (no features: a fast baseline). Every model has an intercept
that is not penalized: only the feature weights shrink toward zero, so a rare reward (a 0.4%
click rate) is predicted near its observed rate rather than pulled toward σ(0) = 0.5 or 0.

`weighting` fits q̂ for a doubly robust estimate rather than for prediction: each logged
row's loss is weighted by `fit_weights` (importance weights, or the More Robust Doubly Robust
weights of Farajtabar, Chow & Ghavamzadeh, ICML 2018, which minimize DR's variance); the
weights need the target policy, so such a q̂ serves one target.

`RewardModelFit.calibration(data)` checks the fit where it can be checked, on the logged
actions (see calibration.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .calibration import Calibration, calibrate
from .dataset import LoggedBandit
from .hashed import HashedFeatures

RewardModelKind = Literal["auto", "ridge", "logistic", "action_mean"]
Weighting = Literal["none", "iw", "mrdr"]
_PREDICT_CHUNK = 65_536


@dataclass(frozen=True)
class RewardModelFit:
    q_hat: np.ndarray
    """(n, K) cross-fitted predicted reward of every offered action, zero on padding."""
    kind: str
    features: str
    n_folds: int
    featurize_seconds: float
    fit_seconds: float

    def calibration(self, data: LoggedBandit, n_bins: int = 10) -> Calibration:
        """How well q̂ of the logged actions matches their rewards (see `Calibration`)."""
        return calibrate(self.q_hat[np.arange(data.n), data.action], data.reward, n_bins)


def _folds(data: LoggedBandit, n_folds: int, rng: np.random.Generator) -> np.ndarray:
    decisions = data.decision_index()
    n_decisions = int(decisions.max()) + 1 if data.n else 0
    return rng.integers(0, n_folds, size=n_decisions)[decisions]


def fit_weights(data: LoggedBandit, pi_e: np.ndarray | None, weighting: Weighting) -> np.ndarray:
    """(n,) weight of each logged row's loss in the reward model's fit, normalized to mean 1
    (so `l2` keeps its strength); with ρ = π_e(a|x)/π_b(a|x) of the logged action,

    - `none`: 1 (q̂ for prediction: every row counts the same);
    - `iw`:   ρ (q̂ fitted where the target plays);
    - `mrdr`: ρ·(1 − π_b(a|x))/π_b(a|x), the More Robust Doubly Robust weight (Farajtabar,
      Chow & Ghavamzadeh, ICML 2018): for a deterministic target it is 1{a = π_e(x)}·
      (1 − π_b)/π_b², the weight under which the weighted squared error of q̂ is the part
      of DR's variance that q̂ controls; obp's `RegressionModel(fitting_method="mrdr")`.

    >>> from banditrec.replay.dataset import LoggedBandit
    >>> log = LoggedBandit(action=[0, 1], reward=[1.0, 0.0], pscore=[0.5, 0.25],
    ...     pi_b=np.array([[0.5, 0.5], [0.75, 0.25]]), n_offered=np.array([2, 2]),
    ...     event_id=["a", "b"])
    >>> fit_weights(log, np.array([[1.0, 0.0], [0.0, 1.0]]), "mrdr").round(3).tolist()
    [0.286, 1.714]
    """
    if weighting == "none":
        return np.ones(data.n)
    if weighting not in ("iw", "mrdr"):
        raise ValueError(f"unknown weighting {weighting!r}; choose none, iw or mrdr")
    if pi_e is None:
        raise ValueError(f"weighting={weighting!r} needs the target policy's pmfs (pi_e)")
    pi_e = np.asarray(pi_e, dtype=np.float64)
    if pi_e.shape != data.pi_b.shape:
        raise ValueError(f"pi_e must be {data.pi_b.shape} like the log; got {pi_e.shape}")
    rho = pi_e[np.arange(data.n), data.action] / data.pscore
    weight = rho if weighting == "iw" else rho * (1.0 - data.pscore) / data.pscore
    total = float(weight.sum())
    if total <= 0:  # the target plays no logged action: DR's correction is 0 whatever q̂
        return np.ones(data.n)
    return weight * (data.n / total)


def _ridge_solve(gram: np.ndarray, rhs: np.ndarray, l2: float) -> np.ndarray:
    """Ridge on a design whose last column is the intercept: every weight but the last is
    penalized by l2 (the intercept is free; it needs at least one row)."""
    penalty = np.full(gram.shape[0], l2)
    penalty[-1] = 0.0
    return np.linalg.solve(gram + np.diag(penalty), rhs)


def _with_intercept(x: np.ndarray) -> np.ndarray:
    return np.column_stack([x, np.ones(x.shape[0])])


def _shared_model(
    features: HashedFeatures,
    data: LoggedBandit,
    folds: np.ndarray,
    n_folds: int,
    kind: str,
    l2: float,
    weight: np.ndarray,
) -> tuple[np.ndarray, float]:
    """q̂ from one linear (or logistic) model per fold on hashed features; and the seconds
    the first featurization pass took."""
    start_time = time.perf_counter()
    x = np.zeros((data.n, features.dim))
    for start, block in features.chunks("featurizing"):
        rows = np.arange(block.shape[0])
        x[start : start + block.shape[0]] = block[rows, data.action[start : start + block.shape[0]]]
    featurized = time.perf_counter() - start_time
    y = data.reward
    theta = np.zeros((n_folds, features.dim))
    bias = np.zeros(n_folds)
    if kind == "ridge":
        xb = _with_intercept(x)
        xw = xb * weight[:, None]
        gram = [xw[folds == f].T @ xb[folds == f] for f in range(n_folds)]
        rhs = [xw[folds == f].T @ y[folds == f] for f in range(n_folds)]
        gram_all, rhs_all = sum(gram), sum(rhs)
        for f in range(n_folds):
            solved = _ridge_solve(gram_all - gram[f], rhs_all - rhs[f], l2)
            theta[f], bias[f] = solved[:-1], solved[-1]
    else:
        from sklearn.linear_model import LogisticRegression

        for f in range(n_folds):
            train = folds != f
            model = LogisticRegression(C=1.0 / l2, solver="newton-cholesky", max_iter=200)
            model.fit(x[train], y[train] > 0.5, sample_weight=weight[train])
            theta[f], bias[f] = model.coef_[0], model.intercept_[0]
    q = np.zeros((data.n, data.n_actions))
    for start, block in features.chunks("scoring"):
        f = folds[start : start + block.shape[0]]
        linear = np.einsum("nkd,nd->nk", block, theta[f]) + bias[f][:, None]
        q[start : start + block.shape[0]] = (
            1.0 / (1.0 + np.exp(-linear)) if kind == "logistic" else linear
        )
    return q, featurized


EVENTS_PER_WEIGHT = 10
"""A per-action model needs this many of its rarer outcome per weight (Peduzzi et al. 1996's
events-per-variable rule; for ridge: rows per weight) for every action id logged."""


def _enough_per_action(context: np.ndarray, data: LoggedBandit, kind: str) -> bool:
    _, index = data.action_vocabulary()
    chosen = index[np.arange(data.n), data.action]
    n_ids = int(index.max()) + 1
    rows = np.bincount(chosen, minlength=n_ids)
    if kind == "logistic":
        positive = np.bincount(chosen, weights=data.reward > 0.5, minlength=n_ids)
        rows = np.minimum(positive, rows - positive)
    logged = np.bincount(chosen, minlength=n_ids) > 0
    return bool((rows[logged] >= EVENTS_PER_WEIGHT * (context.shape[1] + 1)).all())


def _dense_model(
    context: np.ndarray,
    index: np.ndarray,
    chosen: np.ndarray,
    reward: np.ndarray,
    folds: np.ndarray,
    spec: tuple[int, int, str, float],
    weight: np.ndarray,
) -> np.ndarray:
    """One model per fold on [context, one-hot action id] plus a free intercept: every
    action shares the context's effect and the pooled rate, and has its own (shrunk)
    offset. `index` (rows, K) are the offered actions' ids (−1 on padding), `chosen` the
    logged one's; `spec` = (number of ids, folds, kind, l2); `weight` each row's loss weight."""
    n_ids, n_folds, kind, l2 = spec
    d = context.shape[1]
    x = np.zeros((context.shape[0], d + n_ids))
    x[:, :d] = context
    x[np.arange(context.shape[0]), d + chosen] = 1.0
    q = np.zeros(index.shape)
    safe = np.maximum(index, 0)
    for f in range(n_folds):
        train, test = folds != f, folds == f
        prior = float(reward[train].mean()) if train.any() else 0.0
        theta, logistic = _fit(
            _with_intercept(x[train]), reward[train], kind, l2, prior, weight[train]
        )
        base = context[test] @ theta[:d] + theta[-1]
        linear = base[:, None] + theta[d:-1][safe[test]]
        q[test] = 1.0 / (1.0 + np.exp(-linear)) if logistic else linear
    return q


def _loss(q: np.ndarray, reward: np.ndarray, kind: str, weight: np.ndarray) -> float:
    """Held-out loss of cross-fitted predictions of the logged actions, weighted as in the
    fit: log loss for a logistic model, squared error otherwise."""
    if kind != "logistic":
        return float(np.average((reward - q) ** 2, weights=weight))
    p = np.clip(q, 1e-12, 1.0 - 1e-12)
    return float(-np.average(reward * np.log(p) + (1.0 - reward) * np.log1p(-p), weights=weight))


def _shared_dense_model(
    context: np.ndarray,
    data: LoggedBandit,
    folds: np.ndarray,
    spec: tuple[int, str, float],
    weight: np.ndarray,
) -> tuple[np.ndarray, str]:
    """q̂ from `_dense_model`, and which features it used. A multi-slot log (positions of
    a list, slots of a page) gets both a model shared by the slots, with a one-hot slot
    among its features (slots differ in rate only), and one model per slot (slots differ
    in how each action does there, as positions of a ranked list do, obp's
    `RegressionModel`); the one whose cross-fitted predictions of the logged actions have
    the lower held-out loss is kept. `spec` = (folds, kind, l2)."""
    n_folds, kind, l2 = spec
    _, index = data.action_vocabulary()
    chosen = index[np.arange(data.n), data.action]
    dense = (int(index.max()) + 1, n_folds, kind, l2)
    if not data.is_multislot:
        q = _dense_model(context, index, chosen, data.reward, folds, dense, weight)
        return q, "context + action id"
    assert data.slot is not None
    one_hot = np.eye(len(data.slot_names))[data.slot][:, 1:]
    shared = _dense_model(
        np.column_stack([context, one_hot]), index, chosen, data.reward, folds, dense, weight
    )
    per_slot = np.zeros_like(shared)
    for s in np.unique(data.slot):
        rows = data.slot == s
        per_slot[rows] = _dense_model(
            context[rows],
            index[rows],
            chosen[rows],
            data.reward[rows],
            folds[rows],
            dense,
            weight[rows],
        )
    logged = (np.arange(data.n), data.action)
    if _loss(per_slot[logged], data.reward, kind, weight) < _loss(
        shared[logged], data.reward, kind, weight
    ):
        return per_slot, "context + action id, one model per slot"
    return shared, "context + slot + action id"


def _per_action_model(
    context: np.ndarray,
    data: LoggedBandit,
    folds: np.ndarray,
    spec: tuple[int, str, float],
    weight: np.ndarray,
) -> np.ndarray:
    """One model per (fold, action id) on the dense context plus an intercept; `spec` =
    (folds, kind, l2)."""
    n_folds, kind, l2 = spec
    _, index = data.action_vocabulary()
    chosen_id = index[np.arange(data.n), data.action]
    n_ids = int(index.max()) + 1
    y = data.reward
    x = _with_intercept(context if kind != "action_mean" else np.zeros((data.n, 0)))
    theta = np.zeros((n_folds, n_ids, x.shape[1]))
    logistic = np.zeros((n_folds, n_ids), dtype=bool)
    for f in range(n_folds):
        train = folds != f
        prior = float(y[train].mean()) if train.any() else 0.0
        for g in range(n_ids):
            rows = train & (chosen_id == g)
            theta[f, g], logistic[f, g] = _fit(x[rows], y[rows], kind, l2, prior, weight[rows])
    safe_index = np.where(index >= 0, index, 0)
    q = np.zeros((data.n, data.n_actions))
    for start in range(0, data.n, _PREDICT_CHUNK):
        rows = slice(start, start + _PREDICT_CHUNK)
        cell = (folds[rows, None], safe_index[rows])
        linear = np.einsum("nd,nkd->nk", x[rows], theta[cell])
        q[rows] = np.where(logistic[cell], 1.0 / (1.0 + np.exp(-linear)), linear)
    return q


def _fit(
    x: np.ndarray, y: np.ndarray, kind: str, l2: float, prior: float, weight: np.ndarray
) -> tuple[np.ndarray, bool]:
    """Coefficients (the last one the unpenalized intercept: `x` ends with a ones column),
    and whether they are logistic (else linear), minimizing the `weight`-weighted loss; rows
    of weight 0 are left out. An action never logged (or only with weight 0) predicts
    `prior`, the mean reward of the training fold."""
    if not (weight > 0).all():
        keep = weight > 0
        x, y, weight = x[keep], y[keep], weight[keep]
    if y.size == 0:
        theta = np.zeros(x.shape[1])
        theta[-1] = prior
        return theta, False
    if kind == "logistic" and np.unique(y).size == 2:
        from sklearn.linear_model import LogisticRegression

        # scikit-learn's lbfgs / newton solvers leave the intercept out of the penalty
        model = LogisticRegression(C=1.0 / l2, solver="newton-cholesky", max_iter=200)
        model.fit(x[:, :-1], y > 0.5, sample_weight=weight)
        return np.append(model.coef_[0], model.intercept_[0]), True
    xw = x * weight[:, None]
    return _ridge_solve(xw.T @ x, xw.T @ y, l2), False


def cross_fit(
    data: LoggedBandit,
    *,
    kind: RewardModelKind = "auto",
    n_folds: int = 3,
    dim: int = 64,
    l2: float = 1.0,
    seed: int = 0,
    features: Literal["auto", "context", "hashed"] = "auto",
    weighting: Weighting = "none",
    pi_e: np.ndarray | None = None,
    progress: bool | None = None,
) -> RewardModelFit:
    """Cross-fitted q̂ for every (row, offered action); with `weighting` "iw" or "mrdr",
    each row's loss is weighted by `fit_weights(data, pi_e, weighting)` (the target's pmfs
    `pi_e`, (n, K) like the log, are then required)."""
    if n_folds < 2:
        raise ValueError(f"cross-fitting needs at least 2 folds, got {n_folds}")
    if l2 <= 0:
        raise ValueError(f"l2 must be positive, got {l2}")
    binary = bool(np.isin(data.reward, (0.0, 1.0)).all())
    if kind == "auto":
        kind = "logistic" if binary else "ridge"
    if kind == "logistic" and not binary:
        raise ValueError("a logistic reward model needs rewards in {0, 1}; use kind='ridge'")
    if kind not in ("ridge", "logistic", "action_mean"):
        raise ValueError(
            f"unknown reward model {kind!r}; choose ridge, logistic, action_mean or auto"
        )
    if features == "auto":
        features = "context" if data.context is not None or kind == "action_mean" else "hashed"
    weight = fit_weights(data, pi_e, weighting)
    folds = _folds(data, n_folds, np.random.default_rng(seed))
    start = time.perf_counter()
    if features == "hashed" and kind != "action_mean":
        q, featurize_seconds = _shared_model(
            HashedFeatures(data, dim, progress), data, folds, n_folds, kind, l2, weight
        )
        featurized = start + featurize_seconds
    else:
        if features == "context" and data.context is None and kind != "action_mean":
            raise ValueError("this log has no dense context; use features='hashed'")
        context = np.zeros((data.n, 0)) if data.context is None else np.asarray(data.context, float)
        featurized = time.perf_counter()
        if kind != "action_mean" and not _enough_per_action(context, data, kind):
            q, features = _shared_dense_model(context, data, folds, (n_folds, kind, l2), weight)
        else:
            q = _per_action_model(context, data, folds, (n_folds, kind, l2), weight)
    low, high = float(data.reward.min()), float(data.reward.max())
    q = np.where(data.mask, np.clip(q, low, high), 0.0)
    return RewardModelFit(
        q_hat=q,
        kind=kind,
        features=features if kind != "action_mean" else "action id",
        n_folds=n_folds,
        featurize_seconds=featurized - start,
        fit_seconds=time.perf_counter() - featurized,
    )
