"""Vowpal Wabbit `ccb_explore_adf`: slates as VW's conditional contextual bandit.

One CCB prediction over all candidates and k slots chains VW's explorer down the
positions: slot j's pmf is over the candidates left after VW's own pick for each slot
above it (its first, highest-scored action). The engine draws each position itself (see
slates/choose.py); while its draws follow VW's picks, slot j's pmf is exactly the pmf
over the candidates left, and when a draw leaves VW's chain (exploration, or a rule) the
same parsed example is predicted again with the slots relabelled to the candidates
actually left — one parse per slate, never one per position.

Chosen over VW's `slates` reduction by measurement (BENCHMARKS.md, bench/bench_slates.py):
`slates` needs each slot's own copy of the shared candidates, k × N action examples.
"""

from __future__ import annotations

from typing import Self

import numpy as np
import orjson
import vowpal_wabbit_next as vw

from ..config import VWCCBPolicyConfig
from ..features import FeatureSet, Interaction
from ..slates.dsjson import ccb_example
from .base import Policy

_SLOT = vw.CCBExampleType.Slot


class SlateChain:
    """One parsed CCB example of a slate request: predict the slots' pmfs, as many times as
    the engine's draws need, each over the candidates given."""

    def __init__(self, policy: VWCCBPolicy, x: FeatureSet, slots: int) -> None:
        self._workspace = policy.workspace
        examples = policy._parser.parse_json(ccb_example(x.vw_json(), slots))
        self._head = examples[:-slots]  # shared + the candidates
        self._slots = examples[-slots:]

    def predict(
        self, first: list[int], rest: list[int], slots: int
    ) -> list[list[tuple[int, float]]]:
        """Per slot, (candidate index, probability), VW's pick first. The first slot may take
        `first`, the following ones `rest` minus VW's picks above them."""
        chosen = self._slots[:slots]
        for i, ex in enumerate(chosen):
            ex.set_label(vw.CCBLabel(_SLOT, explicit_included_actions=first if i == 0 else rest))
        return self._workspace.predict_one([*self._head, *chosen])


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

    def chain(self, x: FeatureSet, slots: int) -> SlateChain:
        return SlateChain(self, x, slots)

    def pmf(self, x: FeatureSet, seed: int) -> np.ndarray:
        return np.array(self.probabilities(x, seed))

    def probabilities(self, x: FeatureSet, seed: int) -> list[float]:
        """A single decision: the first slot's pmf over every candidate."""
        everyone = list(range(len(x)))
        out = [0.0] * len(x)
        for index, prob in self.chain(x, 1).predict(everyone, everyone, 1)[0]:
            out[index] = prob
        return out

    def learn(self, it: Interaction) -> None:
        """One position: a CCB example with one slot over the candidates it was drawn from."""
        x = it.features
        line = {
            "c": {**x.context, "_multi": x.actions, "_slots": [{"_id": it.slot or "1"}]},
            "_outcomes": [{"_label_cost": -it.reward, "_a": [it.chosen], "_p": [it.probability]}],
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
