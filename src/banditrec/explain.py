"""Why this action: per-decision explanations, computed only when a request asks (`explain: true`).

An explanation says, for one decision (one per slot):

- `scores`: the policy's estimate of each offered action's reward, and what that estimate
  is (`score_kind`): VW's reward estimate (the negative of the cost it learns), the linear
  policies' θ·x, the non-contextual policies' mean reward, an RL module's action values
  (logits or Q-values);
- `greedy`: the action with the best score, and `exploratory`: whether the chosen action
  is not it (so exploration, not the estimate, picked it);
- `probabilities`: the served probability of every offered action;
- `contributions`: the chosen action's score split into per-feature terms (at most
  `TOP_K`), with `bias` (the constant) and `rest` (the sum of the terms left out) so that
  `bias + rest + Σ contribution == scores[chosen]`. Each term's `relative` is its
  contribution minus its mean over the offered actions: how much it sets the chosen action
  apart. Terms are ordered by |relative| (then |contribution|): a context feature on its
  own moves every action's score alike (relative 0) and so cannot explain the choice; its
  crosses with the action's features can.

Each term is `weight × value`: for VW the model's weight at the feature's hash (first-order
features and the configured interactions, named `ns^a*ns^b`; a ':' wildcard in an
interaction is not expanded, so its terms are missing from the scores); for LinUCB/LinTS θ at the
feature's hashed bin over the chosen action's norm (its own features and its context ×
action crosses). An RL module's terms are gradient × input on the observation features
(central differences), so they add up to the score only approximately; `rest` is then the
remainder. Non-contextual policies and the baselines have no feature terms.

The format (`version` 1) is stable: fields are only ever added.
"""

from __future__ import annotations

import weakref
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .decision.features import FeatureSet
from .decision.schema import Decision
from .policies.interactions import FULL_NAME_FLAG

if TYPE_CHECKING:
    from .decision.served import SlotChoice

TOP_K = 10
FORMAT_VERSION = 1
_FNV_PRIME = 16777619  # VW's interaction hash: (prime × first) ^ second
_VW_CONSTANT = 11650396  # VW's hash of its constant feature
_CROSS_PRIME = 0x6A09E667  # decision/features.py's context × action cross


@dataclass(frozen=True, slots=True)
class Contribution:
    """One term of the chosen action's score: `weight × value`."""

    feature: str  # "namespace^name" (string values "namespace^name=value"); crosses joined by '*'
    value: float
    weight: float
    contribution: float
    relative: float  # contribution minus its mean over the offered actions


@dataclass(frozen=True, slots=True)
class Explanation:
    slot: str | None
    policy: str
    chosen: str
    greedy: str | None
    exploratory: bool | None
    probabilities: dict[str, float]
    score_kind: str | None
    scores: dict[str, float] | None
    contributions: list[Contribution] = field(default_factory=list)
    bias: float = 0.0
    rest: float = 0.0
    version: int = FORMAT_VERSION


@dataclass(frozen=True, slots=True)
class ExplainedDecision(Decision):
    """A `Decision` with one explanation per slot (a single-slot app's under `slot: null`)."""

    explanations: list[Explanation] = field(default_factory=list)


# --- the terms of each policy's score ---------------------------------------------------


def _flat(features: dict[str, Any]) -> list[tuple[str, str, float, str | None]]:
    """(namespace, name, value, string value) of every feature; booleans are 1/0."""
    out = []
    for ns, feats in features.items():
        if ns.startswith("_"):
            continue
        for name, v in feats.items():
            if isinstance(v, str):
                out.append((ns, name, 1.0, v))
            else:
                out.append((ns, name, float(v), None))
    return out


def _label(ns: str, name: str, text: str | None) -> str:
    return f"{ns}^{name}" if text is None else f"{ns}^{name}={text}"


Terms = list[tuple[str, float, float]]  # (feature, value, weight)
# Each VW policy's feature hashes, by (namespace, name): names repeat from request to request.
_INDEXES: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], int]] = weakref.WeakKeyDictionary()
_INDEX_CACHE_MAX = 1 << 16


def _vw_terms(policy: Any, x: FeatureSet) -> tuple[list[Terms], list[float]]:
    """Per action: its terms (in reward units) and its bias, from the model's weights."""
    ws = policy.workspace
    weights = ws.weights()  # (bins, interleaved models, stride): a view, not a copy
    w = weights[:, :, 0].mean(axis=1) if weights.shape[1] > 1 else weights[:, 0, 0]
    mask = w.shape[0] - 1
    cache = _INDEXES.get(policy)
    if cache is None or len(cache) > _INDEX_CACHE_MAX:
        cache = _INDEXES[policy] = {}
    vw_index = ws.get_index_for_scalar_feature

    def index_of(key: str, ns: str) -> int:
        found = cache.get((ns, key))
        if found is None:
            found = cache[ns, key] = vw_index(key, namespace_name=ns)
        return found

    args = policy.vw_args()  # the model's own, the crosses it added as namespaces came
    terms_spec = [args[i + 1] for i, a in enumerate(args) if a in ("--interactions", "-q")]
    full_specs = [args[i + 1].split("|") for i, a in enumerate(args) if a == FULL_NAME_FLAG]
    noconstant = "--noconstant" in args
    # VW predicts costs; reward = high − (high − low)·cost on the policy's range (decision/costs.py)
    scale = policy.cost_scale
    k = -(scale.high - scale.low)

    def indexed(features: dict[str, Any]) -> list[tuple[str, str, int, float]]:
        out = []
        for ns, name, value, text in _flat(features):
            # VW's JSON parser names a string-valued feature name+value, value 1
            key = name if text is None else name + text
            out.append((ns, _label(ns, name, text), index_of(key, ns), value))
        return out

    vw_input = x.dsjson_c()  # as VW parses it: namespaces it cannot take escaped
    shared = indexed({k: v for k, v in vw_input.items() if k != "_multi"})
    all_terms: list[Terms] = []
    biases = []
    for action in vw_input["_multi"]:
        feats = shared + indexed(action)
        terms: Terms = [(label, v, k * float(w[i & mask])) for _, label, i, v in feats]
        by_group: dict[str, list[tuple[str, int, float]]] = {}
        by_name: dict[str, list[tuple[str, int, float]]] = {}
        for ns, label, i, v in feats:
            by_group.setdefault(ns[0], []).append((label, i, v))
            by_name.setdefault(ns, []).append((label, i, v))
        for a, b in full_specs:  # context × action namespace, by full name
            terms += [
                (f"{la}*{lb}", va * vb, k * float(w[((_FNV_PRIME * ia) ^ ib) & mask]))
                for la, ia, va in by_name.get(a, [])
                for lb, ib, vb in by_name.get(b, [])
            ]
        for spec in terms_spec:
            if len(spec) == 2 and spec[0] == spec[1]:  # VW crosses a namespace with itself once
                group = by_group.get(spec[0], [])
                terms += [
                    (f"{la}*{lb}", va * vb, k * float(w[((_FNV_PRIME * ia) ^ ib) & mask]))
                    for n, (la, ia, va) in enumerate(group)
                    for lb, ib, vb in group[n:]
                ]
                continue
            groups = [by_group.get(c, []) if c != ":" else [] for c in spec]
            crossed: list[tuple[str, int, float]] = [("", 0, 1.0)]
            for n, group in enumerate(groups):
                crossed = [
                    (f"{la}*{lb}" if n else lb, (_FNV_PRIME * ia) ^ ib if n else ib, va * vb)
                    for la, ia, va in crossed
                    for lb, ib, vb in group
                ]
            terms += [(label, v, k * float(w[i & mask])) for label, i, v in crossed]
        all_terms.append(terms)
        biases.append(scale.high + (0.0 if noconstant else k * float(w[_VW_CONSTANT & mask])))
    return all_terms, biases


def _crc(text: str) -> int:
    return zlib.crc32(text.encode())


def _linear_terms(policy: Any, x: FeatureSet) -> tuple[list[Terms], list[float]]:
    """θ at each feature's bin of `FeatureSet.hashed` (see its docstring), over the norm."""
    dim = policy.config.dim
    theta = policy.theta
    ctx = [(_label(ns, n, t), v, _crc(_label(ns, n, t))) for ns, n, v, t in _flat(x.context)]
    all_terms, biases = [], []
    for action in x.actions:
        raw = np.zeros(dim)
        own = [(_label(ns, n, t), v, _crc(_label(ns, n, t))) for ns, n, v, t in _flat(action)]
        terms: list[tuple[str, float, int]] = [(lab, v, h % dim) for lab, v, h in own]
        terms += [
            (f"{lc}*{la}", vc * va, (hc * _CROSS_PRIME % dim + ha % dim) % dim)
            for lc, vc, hc in ctx
            for la, va, ha in own
        ]
        raw[0] += 1.0
        for _, v, b in terms:
            raw[b] += v
        norm = float(np.linalg.norm(raw)) or 1.0
        all_terms.append([(lab, v / norm, float(theta[b])) for lab, v, b in terms])
        biases.append(float(theta[0]) / norm)
    return all_terms, biases


def _terms(policy: Any, x: FeatureSet) -> tuple[str | None, np.ndarray | None, list[Terms], list]:
    """(score kind, scores, per-action terms, per-action biases) of any policy."""
    from .policies.linear import _RidgeState
    from .policies.mab import _ArmStats
    from .policies.rl import RLPolicy
    from .policies.vw import VWPolicy

    k = len(x)
    if isinstance(policy, VWPolicy):
        try:
            terms, biases = _vw_terms(policy, x)
        except (ValueError, RuntimeError):  # sparse weights: no dense view to read
            return None, None, [[] for _ in range(k)], [0.0] * k
        scores = np.array(
            [b + sum(v * w for _, v, w in t) for t, b in zip(terms, biases, strict=True)]
        )
        return "estimated reward (VW, -cost)", scores, terms, biases
    if isinstance(policy, _RidgeState):
        terms, biases = _linear_terms(policy, x)
        scores = np.asarray(x.hashed(policy.config.dim) @ policy.theta, dtype=float)
        return "estimated reward (theta . x)", scores, terms, biases
    if isinstance(policy, _ArmStats):
        n, s, _ = policy.stats(x.action_ids)
        means = np.divide(s, n, out=np.zeros_like(s), where=n > 0)
        return "mean reward", means, [[] for _ in range(k)], list(means)
    if isinstance(policy, RLPolicy) and policy.module is not None:
        return _rl_explanation(policy, x)
    return None, None, [[] for _ in range(k)], [0.0] * k


def _rl_explanation(policy: Any, x: FeatureSet) -> tuple[str, np.ndarray, list[Terms], list]:
    """Action values; per action, gradient × input over the observation (central differences)."""
    obs = np.asarray(policy.observation(x), dtype=float)
    columns = policy.columns(x.action_ids)
    names = policy.feature_names
    ns = policy.config.state_namespace
    h = 1e-4
    base = policy.module.scores(obs[None, :])[0][columns]
    shifted = np.repeat(obs[None, :], 2 * len(obs), axis=0)
    for i in range(len(obs)):
        shifted[2 * i, i] += h
        shifted[2 * i + 1, i] -= h
    s = policy.module.scores(shifted)[:, columns]
    grad = (s[0::2] - s[1::2]) / (2 * h)  # (d, k)
    kind = "Q-value" if policy.module.gives_q_values else "action logit"
    terms = [
        [(f"{ns}^{names[i]}", float(obs[i]), float(grad[i, a])) for i in range(len(obs))]
        for a in range(len(x))
    ]
    biases = [0.0] * len(x)
    return kind, np.asarray(base, dtype=float), terms, biases


# --- assembly --------------------------------------------------------------------------


def explain_choice(
    policy: Any, choice: SlotChoice, policy_name: str, top_k: int = TOP_K
) -> Explanation:
    """The explanation of one slot's choice under `policy` (the app's learned policy)."""
    x = choice.features
    ids = x.action_ids
    chosen = choice.chosen
    kind, scores, terms, biases = _terms(policy, x)
    probabilities = dict(zip(ids, choice.probabilities, strict=True))
    if scores is None:
        return Explanation(
            choice.slot, policy_name, ids[chosen], None, None, probabilities, None, None
        )
    greedy = int(np.argmax(scores))
    best = scores >= scores.max() - 1e-9  # a tie for the best is not exploration
    totals: dict[str, float] = {}
    for action_terms in terms:
        for label, v, w in action_terms:
            totals[label] = totals.get(label, 0.0) + v * w
    k = len(terms)
    mine = [
        Contribution(label, v, w, v * w, v * w - totals[label] / k)
        for label, v, w in terms[chosen]
        if v * w != 0.0
    ]
    mine.sort(key=lambda c: (-abs(c.relative), -abs(c.contribution)))
    shown = mine[:top_k]
    total = float(scores[chosen])
    bias = float(biases[chosen])
    rest = total - bias - sum(c.contribution for c in shown)
    return Explanation(
        slot=choice.slot,
        policy=policy_name,
        chosen=ids[chosen],
        greedy=ids[chosen] if best[chosen] else ids[greedy],
        exploratory=not bool(best[chosen]),
        probabilities=probabilities,
        score_kind=kind,
        scores={a: float(s) for a, s in zip(ids, scores, strict=True)},
        contributions=shown,
        bias=bias,
        rest=rest if abs(rest) > 1e-9 else 0.0,
    )


def explained(decision: Decision, served: Any, choices: Sequence[SlotChoice]) -> ExplainedDecision:
    """`decision` with the explanation of each of its slots' choices."""
    explanations = [
        explain_choice(served.policies[c.slot], c, served.policy_names[c.slot]) for c in choices
    ]
    fields = {f: getattr(decision, f) for f in Decision.__dataclass_fields__}
    return ExplainedDecision(**fields, explanations=explanations)
