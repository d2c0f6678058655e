"""Vowpal Wabbit `cb_explore_adf`: every VW explorer, chosen by typed config."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Self

import numpy as np
import orjson
import vowpal_wabbit_next as vw

from ..decision.features import FeatureSet, Interaction
from ..policy_config import VWPolicyConfig
from .base import Policy
from .interactions import InteractionCheck


class VWPolicy(Policy):
    kind = "vw"

    def __init__(
        self, config: VWPolicyConfig, model_data: bytes | None = None, n_learned: int = 0
    ) -> None:
        super().__init__(config)
        self.cost_scale = config.cost_scale()
        self.interactions = InteractionCheck(config.interactions, model_data)
        self._open(model_data)
        self.n_learned = n_learned

    def _open(self, model_data: bytes | None, crosses: list[str] | None = None) -> None:
        args = self.config.vw_args() + (crosses or [])
        self.workspace = (
            vw.Workspace(args, model_data=model_data) if model_data else vw.Workspace(args)
        )
        self._parser = vw.JsonFormatParser(self.workspace)
        self._predict, self._learn, self._learn_dsjson = _native_calls(self.workspace, self._parser)

    def vw_args(self) -> list[str]:
        """The VW arguments this model learns with, its crosses included: what `vw --dsjson`
        needs to learn an exported log as the service did."""
        return self.config.vw_args() + self.interactions.cross_args()

    def _observe(self, context: dict[str, Any], actions: list[dict[str, Any]]) -> None:
        """New crosses (see policies/interactions.py): VW takes them as it reloads its model."""
        crosses = self.interactions.observe(context, actions)
        if crosses:
            self._open(self.to_bytes(), crosses)

    def pmf(self, x: FeatureSet, seed: int) -> np.ndarray:
        return np.array(self.probabilities(x, seed))

    def probabilities(self, x: FeatureSet, seed: int) -> list[float]:
        out = [0.0] * len(x)
        for index, prob in self._predict(x.vw_json()):
            out[index] = prob
        return out

    def learn(self, it: Interaction) -> None:
        if self.interactions.due():
            self._observe(it.features.context, it.features.actions)
        label = vw.CBLabel(label=(self.cost_scale.cost(it.reward), it.probability))
        self._learn(it.features.vw_json(), it.chosen - len(it.features), label)
        self.n_learned += 1

    def learn_dsjson(self, line: str | bytes) -> None:
        """Learn from one labelled DSJson line (a logged record with its cost), parsed by VW."""
        if self.interactions.due():
            c = orjson.loads(line)["c"]
            self._observe(c, c.get("_multi", []))
        self._learn_dsjson(line)
        self.n_learned += 1

    def to_bytes(self) -> bytes:
        # VW's own serialized model, loadable by any VW tool (`vw -i`).
        return bytes(self.workspace.serialize())

    @classmethod
    def from_bytes(cls, config: VWPolicyConfig, data: bytes) -> Self:
        return cls(config, model_data=data)


# VW's parsers take the JSON as str or as UTF-8 bytes (as `FeatureSet.vw_json` gives it).
Predict = Callable[[str | bytes], list[tuple[int, float]]]
# (JSON text, the chosen action's index from the end, its label); from the end because VW
# emits a shared example first only when the context has features.
Learn = Callable[[str | bytes, int, vw.CBLabel], None]
LearnDSJson = Callable[[str | bytes], None]


def _native_calls(
    workspace: vw.Workspace, parser: vw.JsonFormatParser
) -> tuple[Predict, Learn, LearnDSJson]:
    """VW's predict and learn for one multi-line example (JSON, or a labelled DSJson line),
    at the lowest per-call cost.

    The public path (`parse_json`, then `workspace.predict_one` / `learn_one`) wraps every
    parsed example in a Python `Example` and then checks each one's label type against the
    workspace's, one native call per example: for 10 actions that costs more than VW's own
    parse and predict together (~25 µs against ~20 µs).
    The check cannot fail here (a parser labels what it parses with its workspace's label
    type, and a CB label is what a CB workspace takes), so the native parse, predict and
    learn are called directly. They are private to vowpal_wabbit_next (pinned < 0.8 in
    pyproject.toml); should they be missing, the public path is used.
    """
    core: Any = getattr(vw, "_core", None)
    parse = getattr(core, "_parse_line_json", None)
    parse_dsjson = getattr(core, "_parse_line_dsjson", None)
    native = getattr(workspace, "_workspace", None)
    if parse is None or parse_dsjson is None or native is None or not workspace.multiline:
        dsjson_parser = vw.DSJsonFormatParser(workspace)

        def learn_public(text: str | bytes, chosen: int, label: vw.CBLabel) -> None:
            examples = parser.parse_json(text)
            examples[chosen].set_label(label)
            workspace.learn_one(examples)

        return (
            lambda text: workspace.predict_one(parser.parse_json(text)),
            learn_public,
            lambda line: workspace.learn_one(dsjson_parser.parse_json(line)),
        )

    predict = native.predict_multi_ex_one
    learn_multi = native.learn_multi_ex_one

    def learn_native(text: str | bytes, chosen: int, label: vw.CBLabel) -> None:
        examples = parse(native, text)
        examples[chosen]._set_label(label)
        learn_multi(examples)

    return (
        lambda text: predict(parse(native, text)),
        learn_native,
        lambda line: learn_multi(parse_dsjson(native, line)),
    )
