"""Vowpal Wabbit `ccb_explore_adf`: slates learned by VW's conditional contextual bandit.

VW's CCB chains its explorer down the slots and samples each slot itself (with its own
random state), so its chain follows VW's draws, not the engine's seeded ones. The engine
therefore asks for one slot at a time, its included actions the candidates its own
draws left (slates/scorers.py: one parse per slate); the log holds one record per
position, and `slates.dsjson.ccb_line` gives VW the CCB DSJson it learns from here.

The default slate policy is `vw` (`cb_explore_adf` on each position's candidates, what
CCB reduces to when slots carry no features): by measurement it is several times
cheaper per position than a CCB slot, and VW's `slates` reduction, which needs each
slot's own copy of the shared candidates, costs more again (BENCHMARKS.md).
"""

from __future__ import annotations

from typing import Self

import numpy as np
import orjson
import vowpal_wabbit_next as vw

from ..decision.features import FeatureSet, Interaction
from ..policy_config import VWCCBPolicyConfig
from ..slates.dsjson import ccb_example
from .base import Policy


class VWCCBPolicy(Policy):
    kind = "vw_ccb"

    def __init__(self, config: VWCCBPolicyConfig, model_data: bytes | None = None) -> None:
        super().__init__(config)
        args = config.vw_args()
        self.workspace = (
            vw.Workspace(args, model_data=model_data) if model_data else vw.Workspace(args)
        )
        self._parser = vw.JsonFormatParser(self.workspace)
        self._dsjson = vw.DSJsonFormatParser(self.workspace)
        self.cost_scale = config.cost_scale()

    def pmf(self, x: FeatureSet, seed: int) -> np.ndarray:
        return np.array(self.probabilities(x, seed))

    def probabilities(self, x: FeatureSet, seed: int) -> list[float]:
        """One slot's pmf over every candidate (a single decision, or one position)."""
        out = [0.0] * len(x)
        for index, prob in self.workspace.predict_one(
            self._parser.parse_json(ccb_example(x.vw_json(), 1))
        )[0]:
            out[index] = prob
        return out

    def learn(self, it: Interaction) -> None:
        """One position: a CCB example with one slot over the candidates it was drawn from."""
        # VW's JSON of the features (namespaces VW cannot take already escaped), one slot
        shared = orjson.loads(it.features.vw_json())
        cost = self.cost_scale.cost(it.reward)  # on the policy's reward range (decision/costs.py)
        line = {
            "c": {**shared, "_slots": [{"_id": it.slot or "1"}]},
            "_outcomes": [{"_label_cost": cost, "_a": [it.chosen], "_p": [it.probability]}],
        }
        self.learn_dsjson(orjson.dumps(line))

    def learn_dsjson(self, line: str | bytes) -> None:
        """Learn from one labelled CCB DSJson line (`slates.dsjson.ccb_line`), parsed by VW."""
        self.workspace.learn_one(self._dsjson.parse_json(line))
        self.n_learned += 1

    def to_bytes(self) -> bytes:
        return bytes(self.workspace.serialize())

    @classmethod
    def from_bytes(cls, config: VWCCBPolicyConfig, data: bytes) -> Self:
        return cls(config, model_data=data)
