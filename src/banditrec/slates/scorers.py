"""A policy's pmf over any subset of a slate's candidates, position after position.

A slate asks its policy for one pmf per position, each over the candidates left. VW
policies parse the request once (VW's parse of 100 candidates × 20 features costs
several times one prediction) and predict each position on the parsed examples of its
candidates: `vw` (`cb_explore_adf`) on the subset's action examples, `vw_ccb`
(`ccb_explore_adf`) on one slot whose included actions are the subset. Any other policy
is asked for its pmf on the subset's features.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import vowpal_wabbit_next as vw

from ..decision.features import FeatureSet
from ..policies import Policy, VWPolicy
from ..policies.vw_ccb import VWCCBPolicy
from .dsjson import ccb_example

# (candidate indices, the position's seed) → the policy's pmf over them, in their order
Scorer = Callable[[Sequence[int], int], list[float]]

_core: Any = getattr(vw, "_core", None)
_parse = getattr(_core, "_parse_line_json", None)


def subset(x: FeatureSet, indices: Sequence[int]) -> FeatureSet:
    """The same context with only the candidates at `indices` (in that order); hashed
    matrices already built for `x` are sliced, not rebuilt (each row is one action's)."""
    out = FeatureSet(x.context, [x.actions[i] for i in indices], [x.action_ids[i] for i in indices])
    for dim, matrix in x._hashed.items():
        out._hashed[dim] = matrix[list(indices)]
    return out


def scorer(policy: Policy, x: FeatureSet) -> Scorer:
    native = getattr(getattr(policy, "workspace", None), "_workspace", None)
    if _parse is not None and native is not None:
        if isinstance(policy, VWCCBPolicy):
            return _ccb_scorer(native, x)
        if isinstance(policy, VWPolicy):
            return _cb_scorer(native, x)
    dim = getattr(policy.config, "dim", None)
    if isinstance(dim, int):  # the numpy policies: hash the candidates once per slate
        x.hashed(dim)
    return lambda indices, seed: policy.probabilities(subset(x, indices), seed)


def _cb_scorer(native: Any, x: FeatureSet) -> Scorer:
    examples = _parse(native, x.vw_json())
    head, actions = examples[: len(examples) - len(x)], examples[len(examples) - len(x) :]
    predict = native.predict_multi_ex_one

    def pmf(indices: Sequence[int], seed: int) -> list[float]:
        out = [0.0] * len(indices)
        for local, prob in predict([*head, *(actions[i] for i in indices)]):
            out[local] = prob
        return out

    return pmf


def _ccb_scorer(native: Any, x: FeatureSet) -> Scorer:
    examples = _parse(native, ccb_example(x.vw_json(), 1))
    slot = examples[-1]
    predict = native.predict_multi_ex_one
    slot_type = vw.CCBExampleType.Slot

    def pmf(indices: Sequence[int], seed: int) -> list[float]:
        included = list(indices)
        slot._set_label(vw.CCBLabel(slot_type, explicit_included_actions=included))
        where = {i: n for n, i in enumerate(included)}
        out = [0.0] * len(included)
        for index, prob in predict(examples)[0]:
            out[where[index]] = prob
        return out

    return pmf
