"""Vowpal Wabbit `cb_explore_adf`: every VW explorer, chosen by typed config."""

from __future__ import annotations

from typing import Self

import numpy as np
import vowpal_wabbit_next as vw

from ..config import VWPolicyConfig
from ..features import FeatureSet, Interaction
from .base import Policy


class VWPolicy(Policy):
    kind = "vw"

    def __init__(
        self, config: VWPolicyConfig, model_data: bytes | None = None, n_learned: int = 0
    ) -> None:
        super().__init__(config)
        args = config.vw_args()
        self.workspace = (
            vw.Workspace(args, model_data=model_data) if model_data else vw.Workspace(args)
        )
        self._parser = vw.JsonFormatParser(self.workspace)
        self.n_learned = n_learned

    def _examples(self, x: FeatureSet) -> list[vw.Example]:
        return self._parser.parse_json(x.vw_json())

    def pmf(self, x: FeatureSet, seed: int) -> np.ndarray:
        out = np.zeros(len(x))
        for index, prob in self.workspace.predict_one(self._examples(x)):
            out[index] = prob
        return out

    def learn(self, it: Interaction) -> None:
        examples = self._examples(it.features)
        # VW emits a shared example first only when the context has features.
        offset = len(examples) - len(it.features)
        examples[offset + it.chosen].set_label(vw.CBLabel(label=(-it.reward, it.probability)))
        self.workspace.learn_one(examples)
        self.n_learned += 1

    def to_bytes(self) -> bytes:
        # VW's own serialized model, loadable by any VW tool (`vw -i`).
        return bytes(self.workspace.serialize())

    @classmethod
    def from_bytes(cls, config: VWPolicyConfig, data: bytes) -> Self:
        return cls(config, model_data=data)
